"""The one-cycle learning-rate schedule of fit (the course-fast recipe): values, bookkeeping, resume."""
import hashlib
import json

import pytest
import torch

from vae_course.checkpoints import load_checkpoint
from vae_course.notebook import run_key
from vae_course.recipes import get_recipe
from vae_course.schedules import make_lr_scheduler
from vae_course.train import RECIPE_OVERRIDES, fit, train_one_epoch
from tiny import random_images, tiny_mlp, weights_equal

SETTINGS = dict(batch_size=32, lr=4e-3, reconstruction="bernoulli", kl="closed-form", beta=1.0,
                binarize="none", drop_last=False, device="cpu", progress=False)


def _lrs(optimizer, scheduler, steps):
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_one_cycle_warms_up_to_the_peak_then_anneals_to_almost_zero():
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=4e-3)
    lrs = _lrs(optimizer, make_lr_scheduler(optimizer, "one-cycle", 100), 100)
    assert lrs[0] == pytest.approx(4e-3 / 25)
    assert max(lrs) == pytest.approx(4e-3) and lrs.index(max(lrs)) == 24  # a quarter of the steps
    assert all(a < b for a, b in zip(lrs[:24], lrs[1:25])) and all(a > b for a, b in zip(lrs[24:], lrs[25:]))
    assert lrs[-1] < 4e-3 / 1000
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)  # momentum left alone


def test_a_scheduler_started_later_continues_with_the_same_values():
    def fresh():
        return torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    optimizer = fresh()
    straight = _lrs(optimizer, make_lr_scheduler(optimizer, "one-cycle", 40), 40)
    optimizer = fresh()
    assert _lrs(optimizer, make_lr_scheduler(optimizer, "one-cycle", 40, start_step=17), 23) == straight[17:]


def test_constant_means_no_scheduler_and_unknown_names_are_refused():
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    assert make_lr_scheduler(optimizer, "constant", 10) is None
    assert make_lr_scheduler(optimizer, "one-cycle", 3) is None  # too short for a cycle: lr stays
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, one-cycle"):
        fit(tiny_mlp(), random_images(8), epochs=1, lr_schedule="cosine", **{k: v for k, v in SETTINGS.items()})


def test_train_one_epoch_steps_the_scheduler_after_every_optimizer_step():
    model = tiny_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = make_lr_scheduler(optimizer, "one-cycle", 10)
    x = random_images(16)
    batches = [(x[i:i + 4], None) for i in range(0, 16, 4)]

    def loss_fn(xb, _):
        from vae_course.losses import elbo_terms
        return elbo_terms(model(xb), xb, reconstruction="bernoulli")
    train_one_epoch(model, optimizer, batches, loss_fn, scheduler=scheduler)
    assert scheduler.last_epoch == 4


def test_fit_records_the_schedule_and_resumes_bit_for_bit(tmp_path):
    x, test_x = random_images(96), random_images(32, seed=1)
    settings = {**SETTINGS, "test_x": test_x, "seed": 3, "lr_schedule": "one-cycle"}
    straight = tiny_mlp()
    history = fit(straight, x, epochs=3, checkpoint=tmp_path / "straight.pt", **settings)
    assert load_checkpoint(tmp_path / "straight.pt")["config"]["training"]["lr_schedule"] == "one-cycle"

    again = tiny_mlp()
    fit(again, x, epochs=3, **settings)
    assert weights_equal(straight, again)  # the same run twice: the same numbers

    constant = tiny_mlp()
    fit(constant, x, epochs=3, **{**settings, "lr_schedule": "constant"})
    assert not weights_equal(straight, constant)  # the schedule did change the training
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]


def test_an_interrupted_one_cycle_run_resumes_exactly(tmp_path):
    """Stop after epoch 2 of 3 (Ctrl-C), resume: the same weights and losses as a straight run."""
    x = random_images(96)
    settings = {**SETTINGS, "seed": 3, "lr_schedule": "one-cycle"}
    straight = tiny_mlp()
    history = fit(straight, x, epochs=3, **settings)

    class StopAfterEpoch2:
        def on_epoch_end(self, state):
            if state.epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_mlp(), x, epochs=3, checkpoint=tmp_path / "run.pt", callbacks=[StopAfterEpoch2()], **settings)
    assert load_checkpoint(tmp_path / "run.pt")["epoch"] == 2
    resumed = tiny_mlp(seed=99)
    resumed_history = fit(resumed, x, epochs=3, checkpoint=tmp_path / "run.pt", resume=True, **settings)
    assert weights_equal(straight, resumed)
    assert resumed_history.iteration_loss == history.iteration_loss


def test_resuming_a_one_cycle_run_with_another_length_warns(tmp_path, capsys):
    x = random_images(64)
    settings = {**SETTINGS, "lr_schedule": "one-cycle", "checkpoint": tmp_path / "run.pt"}
    fit(tiny_mlp(), x, epochs=1, **settings)
    fit(tiny_mlp(), x, epochs=2, resume=True, **settings)
    assert "the lr schedule spans the run" in capsys.readouterr().err


def test_course_fast_is_the_course_network_with_a_one_cycle_schedule_and_its_choices_explained():
    fast, course = get_recipe("course-fast"), get_recipe("course")
    assert (fast.arch, fast.model_kwargs, fast.reconstruction) == (course.arch, course.model_kwargs,
                                                                   course.reconstruction)
    assert fast.lr_schedule == "one-cycle" and course.lr_schedule == "constant"
    assert all(citation == "course" for citation in fast.citations.values())
    assert "course's choice" in fast.notes and "OneCycleLR" in fast.notes


def test_train_recipe_and_the_cli_use_the_recipe_schedule(tmp_path, monkeypatch, fashion_dir):
    from vae_course import cli

    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    out = tmp_path / "run"
    assert cli.main(["train", "--recipe", "course-fast", "--dataset", "fashion-mnist", "--subset", "64",
                     "--out", str(out), "--no-progress"]) == 0
    training = load_checkpoint(out / "checkpoint.pt")["config"]["training"]
    assert (training["lr_schedule"], training["lr"], training["epochs"]) == ("one-cycle", 4e-3, 1)
    out = tmp_path / "constant"
    assert cli.main(["train", "--recipe", "course-fast", "--dataset", "fashion-mnist", "--subset", "64",
                     "--out", str(out), "--no-progress", "--lr-schedule", "constant"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["config"]["training"]["lr_schedule"] == "constant"


def test_the_cache_keys_of_constant_lr_recipes_did_not_change():
    """Cached chapter runs stay valid: the key digests only what it digested before for them."""
    spec = get_recipe("course")
    settings = {"recipe": {k: getattr(spec, k) for k in RECIPE_OVERRIDES}, "overrides": {}}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
    assert run_key("course", "mnist", 30, None, 0, {}).endswith(f"-{digest}") or \
        run_key("course", "mnist", 30, None, 0, {}).endswith(f"-{digest}-quick")
    assert run_key("course-fast", "mnist", 1, None, 0, {}) != run_key("course-fast", "mnist", 1, None, 0,
                                                                       {"lr_schedule": "constant"})
