"""Posterior-collapse diagnostics on tiny hand-built models whose answers are known, and
`vae-course diagnose` on a real one-epoch checkpoint."""
import json
import math

import numpy as np
import pytest
import torch

from vae_course import cli
from vae_course.checkpoints import save_checkpoint
from vae_course.diagnostics import (bits_per_dim, diagnose, kl_per_dimension, mutual_information,
                                    posterior)
from vae_course.evaluate import evaluate_elbo
from vae_course.losses import kl_normal
from vae_course.models import build_model

L = 4


def _model(seed=0, arch="mlp", **kwargs):
    torch.manual_seed(seed)
    return build_model(arch, **{"hidden": [8], "latent_dim": L, **kwargs})


def _images(n=64, seed=0):
    """Grey images of different overall brightness: their mean pixel is a feature that varies."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 1, 1, generator=g) * torch.rand(n, 1, 28, 28, generator=g)


def _collapse(model):
    """mu = 0, logvar = 0 for every image: q(z|x) is the prior."""
    with torch.no_grad():
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.zero_()
    return model


def _partly_active(model):
    """mu_0 = 20 m(x), mu_2 = -20 m(x) with m(x) the mean pixel, narrow posteriors there;
    mu_1 = 0.01 m(x) (moves, but far below the threshold); mu_3 = 3 for every image."""
    first, last = model.encoder[1], model.encoder[-1]
    with torch.no_grad():
        first.weight.zero_()
        first.bias.zero_()
        first.weight[0] = 1.0 / 784            # hidden unit 0 = ReLU(mean pixel) = mean pixel
        last.weight.zero_()
        last.bias.zero_()
        last.weight[0, 0], last.weight[2, 0], last.weight[1, 0] = 20.0, -20.0, 0.01
        last.bias[3] = 3.0
        last.bias[L + 0] = last.bias[L + 2] = -4.0   # logvar
    return model


def test_collapsed_encoder_has_no_kl_no_active_units_and_no_information():
    x = _images()
    result = diagnose(_collapse(_model()), x, reconstruction="bernoulli", binarize="static", k=5)
    assert result["kl_per_dim"] == [0.0] * L and result["rate"] == pytest.approx(0.0, abs=1e-6)
    assert result["active_units"] == 0 and result["active"] == [False] * L
    assert result["mean_variance"] == [0.0] * L
    assert result["mutual_information"] == pytest.approx(0.0, abs=1e-9)


def test_iwae_gap_is_zero_when_neither_network_uses_z():
    model = _collapse(_model())
    with torch.no_grad():
        model.decoder[-2].weight.zero_()   # logits = bias: p(x|z) does not depend on z
    result = diagnose(model, _images(), reconstruction="bernoulli", binarize="static", k=20)
    assert result["iwae_note"] is None
    assert result["iwae_elbo_gap"] == pytest.approx(0.0, abs=1e-3)
    assert result["iwae_nll"] == pytest.approx(result["negative_elbo"], rel=1e-6)


def test_exactly_the_dimensions_that_carry_x_are_active():
    x = _images(64)
    result = diagnose(_partly_active(_model()), x, reconstruction="half-sse", k=0)
    assert result["active"] == [True, False, True, False] and result["active_units"] == 2
    feature = x.double().mean(dim=(1, 2, 3)).numpy()
    expected = 400 * np.var(feature, ddof=1)
    assert result["mean_variance"][0] == pytest.approx(expected, rel=1e-4)
    assert result["mean_variance"][2] == pytest.approx(expected, rel=1e-4)
    assert 0 < result["mean_variance"][1] < 0.01
    assert result["kl_per_dim"][3] == pytest.approx(4.5, rel=1e-6)  # a constant mean costs KL, says nothing
    assert 1.0 < result["mutual_information"] <= math.log(64) + 1e-9
    assert result["mutual_information_max"] == pytest.approx(math.log(64))


def test_mutual_information_matches_numerical_integration():
    """Two posteriors N(-1, 1) and N(1, 1), 1000 images each: I = H(mixture) - H(N(0, 1))."""
    mu = torch.cat([torch.full((1000, 1), -1.0), torch.full((1000, 1), 1.0)]).double()
    logvar = torch.zeros_like(mu)
    grid = torch.linspace(-12, 12, 48001, dtype=torch.float64)
    density = 0.5 * (torch.exp(-0.5 * (grid - 1) ** 2) + torch.exp(-0.5 * (grid + 1) ** 2)) / math.sqrt(2 * math.pi)
    entropy = -(density * torch.log(density)).sum() * (grid[1] - grid[0])
    exact = float(entropy) - 0.5 * math.log(2 * math.pi * math.e)
    estimate = mutual_information(mu, logvar, torch.Generator().manual_seed(0), max_elements=10_000)
    assert estimate == pytest.approx(exact, abs=0.05)


def test_per_dimension_kls_sum_to_the_rate_and_agree_with_losses():
    model, x = _model(3), _images(50, seed=1)
    with torch.no_grad():
        model.encoder[-1].bias[:L] += torch.tensor([1.5, -0.5, 0.0, 2.0])  # KLs of a few nats
    result = diagnose(model, x, reconstruction="bernoulli", binarize="dynamic", k=0)
    assert sum(result["kl_per_dim"]) == pytest.approx(result["rate"], rel=1e-5)
    assert result["kl_total"] == pytest.approx(result["rate"], rel=1e-5)
    scored = evaluate_elbo(model, x, reconstruction="bernoulli", kl="closed-form", binarize="dynamic")
    assert result["rate"] == pytest.approx(scored["kl"], rel=1e-5)  # the same binarized test set
    xs = (x > 0.5).float()
    mu, logvar = posterior(model, xs)
    with torch.no_grad():
        assert mu.shape == (50, L) and mu.dtype == torch.float64
        per_dim = kl_per_dimension(mu, logvar)
        for d in range(L):
            by_losses = kl_normal(mu[:, d:d + 1], logvar[:, d:d + 1]).mean()
            assert float(per_dim[d]) == pytest.approx(float(by_losses), rel=1e-5)


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2)) == pytest.approx(1.0)
    assert bits_per_dim(80.0) == pytest.approx(0.14722, abs=1e-5)
    assert bits_per_dim(math.log(2) * 10, num_pixels=10) == pytest.approx(1.0)
    result = diagnose(_model(), _images(), reconstruction="bernoulli", binarize="static", k=5)
    per_pixel = 784 * math.log(2)
    for key in ("rate", "distortion", "negative_elbo", "iwae_nll"):
        assert result[f"{key}_bits_per_dim"] == pytest.approx(result[key] / per_pixel, rel=1e-12)
    assert result["negative_elbo"] == pytest.approx(result["rate"] + result["distortion"], rel=1e-12)


@pytest.mark.parametrize("reconstruction, binarize, says", [
    ("half-sse", "none", "half-sse"), ("mean-mse", "none", "mean-mse"),
    ("bernoulli", "none", "grey levels")])
def test_no_gap_where_there_is_no_likelihood(reconstruction, binarize, says):
    result = diagnose(_model(), _images(), reconstruction=reconstruction, binarize=binarize, k=5)
    assert result["iwae_elbo_gap"] is None and result["iwae_nll"] is None and says in result["iwae_note"]
    if reconstruction != "bernoulli":
        assert result["negative_elbo"] is None and result["distortion_bits_per_dim"] is None


def test_conditional_model_needs_labels_and_has_no_gap():
    model, x = _model(arch="cvae-mlp", num_classes=3), _images(30)
    y = torch.arange(30) % 3
    result = diagnose(model, x, y, reconstruction="bernoulli", binarize="static", k=5)
    assert result["iwae_elbo_gap"] is None and "conditional" in result["iwae_note"]
    assert len(result["kl_per_dim"]) == L
    with pytest.raises(ValueError, match="labels"):
        diagnose(model, x, reconstruction="bernoulli", binarize="static", k=5)


def test_bad_settings_are_refused():
    model, x = _model(), _images(8)
    with pytest.raises(ValueError, match="binarize"):
        diagnose(model, x, reconstruction="bernoulli", binarize="yes")
    with pytest.raises(ValueError, match="reconstruction"):
        diagnose(model, x, reconstruction="l1")
    with pytest.raises(ValueError, match="k must"):
        diagnose(model, x, reconstruction="bernoulli", k=-1)
    with pytest.raises(ValueError, match="at least 2"):
        diagnose(model, x[:1], reconstruction="bernoulli")


# --- vae-course diagnose ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_epoch_checkpoint(tmp_path_factory):
    """A real one-epoch training of the tf-cvae recipe (Bernoulli, static binarization) on 256 images."""
    from conftest import FASHION_DIR, require
    from vae_course.train import train_recipe
    require((FASHION_DIR / "train-images-idx3-ubyte.gz").exists(), "Debian dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("run")
    train_recipe("tf-cvae", dataset="fashion-mnist", epochs=1, subset=256, device="cpu", out=out,
                 progress=False)
    return out / "checkpoint.pt"


def call_main(capsys, *args):
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured


def test_diagnose_prints_the_table(one_epoch_checkpoint, capsys, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATASET", "mnist")  # the checkpoint's own dataset comes first
    code, captured = call_main(capsys, "diagnose", str(one_epoch_checkpoint), "--subset", "100", "--k", "10")
    assert code == 0, captured.err
    out = captured.out
    for label in ("active units", "/ 2", "mutual information", "log N = 4.6052", "rate (exact KL)", "distortion",
                  "negative ELBO", "IWAE NLL (k=10)", "IWAE - ELBO gap", "bits/dim", "fashion-mnist"):
        assert label in out, label
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["1"])]
    assert sorted(int(r[0]) for r in rows) == [0, 1]
    kls = [float(r[1]) for r in rows]
    assert kls == sorted(kls, reverse=True)  # the dimensions by KL, largest first


def test_diagnose_json_on_a_trained_checkpoint(one_epoch_checkpoint, capsys):
    code, out = call_main(capsys, "diagnose", str(one_epoch_checkpoint), "--dataset", "fashion-mnist",
                          "--subset", "100", "--k", "10", "--json")
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["dataset"] == "fashion-mnist" and result["images"] == 100 and result["latent_dim"] == 2
    assert result["reconstruction"] == "bernoulli" and result["binarize"] == "static"  # the recipe's
    assert sum(result["kl_per_dim"]) == pytest.approx(result["rate"], rel=1e-5)
    assert 0 <= result["active_units"] <= 2 and len(result["active"]) == 2
    assert -1e-9 <= result["mutual_information"] <= math.log(100) + 1e-9
    assert result["iwae_k"] == 10 and result["iwae_note"] is None
    assert result["iwae_elbo_gap"] == pytest.approx(result["negative_elbo"] - result["iwae_nll"])
    assert 0 < result["negative_elbo_bits_per_dim"] < 10


def test_diagnose_json_says_why_a_squared_error_model_has_no_gap(tmp_path, capsys):
    from conftest import require, FASHION_DIR
    require((FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists(), "Debian dataset-fashion-mnist")
    model = _model()
    path = save_checkpoint(tmp_path / "mse.pt", model=model, config={
        "model": dict(model.config), "dataset": "fashion-mnist", "recipe": None,
        "training": {"reconstruction": "mean-mse", "kl": "closed-form", "beta": 0.001, "binarize": "none"}})
    code, out = call_main(capsys, "diagnose", str(path), "--subset", "20", "--json")
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["iwae_elbo_gap"] is None and "mean-mse" in result["iwae_note"]
    assert result["negative_elbo"] is None and result["distortion_units"] == "per-pixel mean squared error"


def test_diagnose_json_of_a_diverged_model_is_strict_json(tmp_path, capsys):
    from conftest import require, FASHION_DIR
    require((FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists(), "Debian dataset-fashion-mnist")
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.pt", model=model, config={
        "model": dict(model.config), "dataset": "fashion-mnist", "recipe": None,
        "training": {"reconstruction": "bernoulli", "binarize": "static"}})
    code, out = call_main(capsys, "diagnose", str(path), "--subset", "8", "--k", "2", "--json")
    assert code == 0, out.err
    result = json.loads(out.out)  # strict JSON: no NaN tokens
    assert result["kl_per_dim"] == [None] * L and result["rate"] is None
    assert out.err.count("kl_per_dim is not finite") == 1


def test_diagnose_bad_input_names_it_and_exits_2(capsys, tmp_path):
    code, out = call_main(capsys, "diagnose", str(tmp_path / "missing.pt"))
    assert code == 2 and "missing.pt" in out.err
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    code, out = call_main(capsys, "diagnose", str(text))
    assert code == 2 and "notes.pt" in out.err and "not a PyTorch checkpoint" in out.err
    foreign = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, foreign)
    code, out = call_main(capsys, "diagnose", str(foreign))
    assert code == 2 and "weights.pt" in out.err and "not a vae-course checkpoint" in out.err
    model = _model()
    odd = save_checkpoint(tmp_path / "odd.pt", model=model, config={
        "model": dict(model.config), "dataset": "cifar-10", "recipe": None, "training": {}})
    code, out = call_main(capsys, "diagnose", str(odd))
    assert code == 2 and "cifar-10" in out.err and "--dataset" in out.err
    for flag, value in (("--subset", "1"), ("--k", "-1")):
        code, out = call_main(capsys, "diagnose", str(odd), flag, value)
        assert code == 2 and flag in out.err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["diagnose", str(odd), "--dataset", "cifar-10"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
