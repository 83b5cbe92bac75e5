"""vae-course doctor and its float64 watch, on every device this machine has."""
import pytest
import torch

from vae_course import cli, exercises, latent_plots, plots
from vae_course.doctor import Float64Watch, check_evaluation, check_recipe, run_checks
from vae_course.evaluate import encode_means, evaluate_elbo, iwae_log_likelihood, reconstruction_errors
from vae_course.models import build_model
from vae_course.recipes import RECIPES
from vae_course.train import fit

from devices import each_device


def _watch(device: str) -> Float64Watch:
    return Float64Watch(simulate=device == "cpu")


def test_the_watch_catches_a_float64_made_on_the_device_before_it_leaves():
    x = torch.rand(4, 3)
    with Float64Watch(simulate=True).mark(x) as watch:
        (x * 2).double().cpu()                       # the old evaluate_elbo: upcast on the device
    assert watch.found and "double" in watch.found[0]
    with Float64Watch(simulate=True).mark(x) as watch:
        (x * 2).cpu().double()                       # move first, then upcast: fine on MPS
        torch.zeros(3, dtype=torch.float64)          # made on the CPU
        (x * 2).to("cpu").double().sum()
    assert watch.found == []
    with Float64Watch(simulate=True) as watch:
        torch.ones(2, dtype=torch.float64, device=torch.device("cpu"))  # made "on the device"
    assert watch.found


@each_device
def test_fit_evaluate_iwae_plots_and_exercises_put_no_float64_on_the_device(device, tmp_path):
    torch.manual_seed(0)
    x = (torch.rand(48, 1, 28, 28, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    y = torch.arange(48) % 10
    conv = build_model("tf-cvae", latent_dim=2)
    conditional = build_model("cvae-mlp", hidden=[16], latent_dim=2)
    with _watch(device).mark(conv, conditional, x, y) as watch:
        common = dict(epochs=1, batch_size=16, lr=1e-3, reconstruction="bernoulli", kl="closed-form",
                      beta=1.0, binarize="dynamic", drop_last=False, device=device, progress=False)
        fit(conv, x, test_x=x, checkpoint=tmp_path / "c.pt", **common)
        fit(conditional, x, train_y=y, test_x=x, test_y=y, **common)
        evaluate_elbo(conv, x, reconstruction="bernoulli", kl="monte-carlo", binarize="static")
        iwae_log_likelihood(conv, x[:8], k=8, generator=torch.Generator().manual_seed(0))
        reconstruction_errors(conditional, x, y=y)
        encode_means(conv, x)
        latent_plots.latent_manifold(conv, n=3)
        latent_plots.interpolation_strip(conv, x[0], x[1], steps=3)
        exercises.check_reconstruction_errors(lambda m, xs: ((m.reconstruct(xs) - xs) ** 2).mean((1, 2, 3)))
    plots.plt.close("all")
    assert watch.found == []


@each_device
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_trains_on_the_device_as_on_the_cpu(recipe, device):
    check = check_recipe(recipe, torch.device(device))
    assert check.ok, check.detail


@each_device
def test_evaluation_and_iwae_pass_on_the_device(device):
    check = check_evaluation(torch.device(device))
    assert check.ok, check.detail


def test_a_failing_check_is_reported_not_raised(monkeypatch):
    import vae_course.doctor as doctor

    def broken(name, device):
        raise RuntimeError("kernel missing")
    monkeypatch.setattr(doctor, "check_recipe", broken)
    checks = run_checks("cpu", recipes=["pytorch-mlp"])
    failed = [c for c in checks if c.ok is False]
    assert len(failed) == 1 and "RuntimeError: kernel missing" in failed[0].detail
    assert doctor.report(checks, 1.0).endswith("1 check(s) FAILED in 1 s")


def test_the_cli_prints_a_table_and_exits_0_when_everything_passes(capsys):
    assert cli.main(["doctor", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for name in RECIPES:
        assert f"PASS  train {name}" in out
    assert "INFO  fit on cpu" in out and "all checks passed" in out


def test_the_cli_prints_the_checks_as_json_with_the_same_verdict(capsys, monkeypatch):
    import json

    import vae_course.doctor as doctor
    monkeypatch.setattr(doctor, "RECIPES", {"pytorch-mlp": RECIPES["pytorch-mlp"]})  # one recipe: quick
    assert cli.main(["doctor", "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)  # JSON only: no table around it
    assert result["device"] == "cpu" and result["passed"] is True and result["failed"] == 0
    assert result["seconds"] >= 0
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["train pytorch-mlp"]["status"] == "PASS" and checks["train pytorch-mlp"]["ok"] is True
    assert checks["fit on cpu"]["status"] == "INFO" and checks["fit on cpu"]["ok"] is None
    assert set(checks) == {"versions", "fit on cpu", "train pytorch-mlp", "evaluate, IWAE", "progress bars"}

    def broken(name, device):
        raise RuntimeError("kernel missing")
    monkeypatch.setattr(doctor, "check_recipe", broken)
    assert cli.main(["doctor", "--device", "cpu", "--json"]) == 1  # the exit status still says it failed
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] is False and result["failed"] == 1
    assert [c["detail"] for c in result["checks"] if c["status"] == "FAIL"] == ["RuntimeError: kernel missing"]


@pytest.mark.parametrize("version, ok", [("7.7.1", True), ("8.1.0", True), ("7.5.2", False)])
def test_progress_bar_check_follows_the_ipywidgets_the_package_requires(version, ok, monkeypatch):
    import ipywidgets

    from vae_course.doctor import check_progress_bars
    monkeypatch.setattr(ipywidgets, "__version__", version)
    check = check_progress_bars()
    assert check.ok is ok and version in check.detail


def test_the_core_install_keeps_colabs_ipywidgets_7():
    """Colab ships ipywidgets 7.7.1; requiring 8 in the core would upgrade it and break its widgets."""
    import tomllib
    from pathlib import Path
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    core = [d for d in project["dependencies"] if d.startswith("ipywidgets")]
    assert core == ["ipywidgets>=7.6"]
    assert "ipywidgets>=8" in project["optional-dependencies"]["book"]
