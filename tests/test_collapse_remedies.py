"""KL warm-up and free bits (chapter 10): the schedule, the gradient, and fit's bookkeeping."""
import pytest
import torch

from vae_course import losses
from vae_course.checkpoints import load_checkpoint
from vae_course.vae import VAEOutput
from vae_course.notebook import run_key
from vae_course.schedules import warmup_beta
from vae_course.train import fit, make_loss_fn, train_recipe
from tiny import random_images, tiny_mlp, weights_equal

SETTINGS = dict(batch_size=32, lr=1e-3, reconstruction="bernoulli", kl="closed-form", beta=1.0,
                binarize="none", drop_last=False, device="cpu", progress=False)


def test_warmup_beta_rises_linearly_then_stays():
    assert [warmup_beta(s, 2.0, 4) for s in range(7)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert warmup_beta(0, 0.3, 0) == 0.3  # no warm-up: the recipe's beta from the first step


def test_the_loss_function_uses_the_warmup_beta_of_each_step_and_continues_from_start_step():
    model, x = tiny_mlp(), random_images(8)
    for start, expected in ((0, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]), (3, [0.75, 1.0, 1.0])):
        loss_fn = make_loss_fn(model, reconstruction="bernoulli", kl="closed-form", beta=1.0,
                               sigma=None, kl_warmup_steps=4, start_step=start)
        used = []
        for _ in expected:
            terms = loss_fn(x, None)
            used.append(float(((terms.loss - terms.reconstruction) / terms.kl).mean().detach()))
        assert used == pytest.approx(expected, abs=1e-4)  # float32: loss - reconstruction cancels


def test_fit_warms_up_over_epochs():
    """One step per epoch: epoch e trains with beta * (e - 1) / 2 for a 2-epoch warm-up."""
    x = random_images(16)
    history = fit(tiny_mlp(), x, **{**SETTINGS, "batch_size": 16, "epochs": 3, "kl_warmup_epochs": 2})
    for record, weight in zip(history.epochs, (0.0, 0.5, 1.0)):
        assert record["train_loss"] == pytest.approx(record["train_reconstruction"] + weight * record["train_kl"])
        assert record["train_kl"] > 0
    # The test loss is the recipe's own objective (beta = 1) from the first epoch on.
    first = history.epochs[0]
    assert first["test_loss"] is None or first["test_loss"] == pytest.approx(
        first["test_reconstruction"] + first["test_kl"])


def _posterior(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mu = (torch.randn(64, 4, generator=g) * torch.tensor([0.05, 0.2, 1.0, 2.0])).requires_grad_()
    logvar = (torch.randn(64, 4, generator=g) * 0.1 - torch.tensor([0.0, 0.1, 1.0, 2.0])).requires_grad_()
    return mu, logvar


def test_free_bits_zeroes_the_gradient_below_the_floor_and_keeps_it_above():
    mu, logvar = _posterior()
    out = VAEOutput(None, mu, mu, logvar)
    per_dim = losses.kl_per_dim(out).mean(dim=0).detach()
    assert float(per_dim.sum()) == pytest.approx(float(losses.kl_normal(mu, logvar).mean().detach()), rel=1e-6)
    floor = 0.3
    below = per_dim < floor
    assert below.any() and (~below).any()  # the test needs both kinds of dimension

    seen = losses.free_bits_kl(losses.kl_per_dim(out), floor)
    assert float(seen.mean().detach()) == pytest.approx(float(per_dim.clamp(min=floor).sum()), rel=1e-6)
    free_mu, free_logvar = torch.autograd.grad(seen.mean(), (mu, logvar))
    plain_mu, plain_logvar = torch.autograd.grad(losses.kl_normal(mu, logvar).mean(), (mu, logvar))
    assert torch.all(free_mu[:, below] == 0) and torch.all(free_logvar[:, below] == 0)
    torch.testing.assert_close(free_mu[:, ~below], plain_mu[:, ~below])
    torch.testing.assert_close(free_logvar[:, ~below], plain_logvar[:, ~below])


def test_free_bits_changes_only_the_loss_and_zero_changes_nothing():
    mu, logvar = _posterior(1)
    logits = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    out = VAEOutput(logits, mu, mu, logvar)
    x = random_images(64)
    plain = losses.elbo_terms(out, x, reconstruction="bernoulli")
    assert all(torch.equal(a, b) for a, b in zip(plain, losses.elbo_terms(out, x, reconstruction="bernoulli",
                                                                           free_bits=0.0)))
    floored = losses.elbo_terms(out, x, reconstruction="bernoulli", free_bits=0.5)
    assert torch.equal(floored.kl, plain.kl) and torch.equal(floored.reconstruction, plain.reconstruction)
    assert float(floored.loss.mean().detach()) > float(plain.loss.mean().detach())
    # The Monte Carlo estimator splits over dimensions too, and its parts sum to its total.
    mc = losses.kl_per_dim(out, "monte-carlo").sum(dim=1)
    torch.testing.assert_close(mc, losses.kl_monte_carlo(mu, mu, logvar))


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1", True])
def test_bad_free_bits_are_refused_with_the_argument_named(bad):
    with pytest.raises(ValueError, match="free_bits must be a number of nats"):
        fit(tiny_mlp(), random_images(8), **{**SETTINGS, "epochs": 1, "free_bits": bad})


@pytest.mark.parametrize("kwargs, message", [
    ({"kl_warmup_epochs": -1}, "kl_warmup_epochs must be a whole number"),
    ({"kl_warmup_steps": 2.5}, "kl_warmup_steps must be a whole number"),
    ({"kl_warmup_epochs": 1, "kl_warmup_steps": 10}, "in epochs or in steps, not both"),
])
def test_bad_warmups_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(tiny_mlp(), random_images(8), **{**SETTINGS, "epochs": 1, **kwargs})


@pytest.mark.parametrize("option", [{"kl_warmup_epochs": 2}, {"kl_warmup_steps": 5}, {"free_bits": 0.25}])
def test_each_remedy_trains_is_recorded_and_resumes_bit_for_bit(tmp_path, option):
    x, test_x = random_images(96), random_images(32, seed=1)
    settings = {**SETTINGS, "test_x": test_x, "seed": 3, **option}
    straight = tiny_mlp()
    history = fit(straight, x, epochs=3, checkpoint=tmp_path / "straight.pt", **settings)
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"] or "kl_warmup_epochs" in option
    training = load_checkpoint(tmp_path / "straight.pt")["config"]["training"]
    assert {k: training[k] for k in option} == option

    fit(tiny_mlp(), x, epochs=2, checkpoint=tmp_path / "split.pt", **settings)
    resumed = tiny_mlp(seed=99)
    resumed_history = fit(resumed, x, epochs=3, checkpoint=tmp_path / "split.pt", resume=True, **settings)
    assert weights_equal(straight, resumed)
    assert resumed_history.iteration_loss == history.iteration_loss

    plain = tiny_mlp()
    fit(plain, x, epochs=3, **{**settings, **{k: 0 for k in option}})
    assert not weights_equal(straight, plain)  # the option did change the training


def test_the_defaults_record_zero_and_train_as_before(tmp_path):
    x = random_images(64)
    a, b = tiny_mlp(), tiny_mlp()
    fit(a, x, epochs=1, checkpoint=tmp_path / "a.pt", **SETTINGS)
    fit(b, x, epochs=1, kl_warmup_epochs=0, kl_warmup_steps=0, free_bits=0.0, **SETTINGS)
    assert weights_equal(a, b)
    training = load_checkpoint(tmp_path / "a.pt")["config"]["training"]
    assert (training["kl_warmup_epochs"], training["kl_warmup_steps"], training["free_bits"]) == (0, 0, 0.0)


def test_train_recipe_and_the_cache_key_know_the_remedies(tmp_path, monkeypatch, fashion_dir):
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    train_recipe("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=128, device="cpu",
                 out=tmp_path / "run", progress=False, beta=1.0, kl_warmup_epochs=1, free_bits=0.5)
    training = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]["training"]
    assert training["kl_warmup_epochs"] == 1 and training["free_bits"] == 0.5
    keys = {run_key("pytorch-mlp", "mnist", 3, None, 0, overrides)
            for overrides in ({"beta": 1.0}, {"beta": 1.0, "kl_warmup_epochs": 1},
                              {"beta": 1.0, "free_bits": 0.5})}
    assert len(keys) == 3


def test_the_cli_passes_the_remedies_to_the_run_and_refuses_bad_values(tmp_path, monkeypatch, fashion_dir,
                                                                        capsys):
    from vae_course import cli

    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    out = tmp_path / "run"
    assert cli.main(["train", "--recipe", "pytorch-mlp", "--dataset", "fashion-mnist", "--epochs", "1",
                     "--subset", "64", "--out", str(out), "--kl-warmup-epochs", "1", "--free-bits", "0.25",
                     "--no-progress"]) == 0
    training = load_checkpoint(out / "checkpoint.pt")["config"]["training"]
    assert (training["kl_warmup_epochs"], training["free_bits"]) == (1, 0.25)
    for flag, value in (("--free-bits", "-1"), ("--free-bits", "nan"), ("--kl-warmup-epochs", "-2")):
        assert cli.main(["train", "--recipe", "pytorch-mlp", "--subset", "8", flag, value]) != 0
        assert flag in capsys.readouterr().err
