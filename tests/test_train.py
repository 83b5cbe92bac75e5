"""The training engine: it learns, resumes bit-for-bit, survives Ctrl-C, stops on NaN."""
import functools
import math
from pathlib import Path

import pytest
import torch

from vae_course import data
from vae_course.models import build_model
from vae_course.tolerances import assert_close_after_steps, assert_one_pass_close
from vae_course.checkpoints import CheckpointError, load_checkpoint, load_model, save_checkpoint
from vae_course.devices import mps_available, pick_device
from vae_course.history import History, NonFiniteLossError
from vae_course.train import fit, train_recipe

from devices import each_device

SETTINGS = dict(batch_size=32, lr=1e-3, reconstruction="bernoulli", kl="closed-form", beta=1.0,
                binarize="none", drop_last=False, device="cpu", progress=False)


@functools.lru_cache(maxsize=None)
def _fashion(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """512 real Fashion-MNIST test images (the small file: quick to read)."""
    x, _ = data.load_tensors("fashion-mnist", "test", subset=512, root=root, download=False)
    return x[:384], x[384:]


def _synthetic(n: int = 100, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _model(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return build_model("mlp", **{"hidden": [32], "latent_dim": 2, **kwargs})


def _run(model, x, **overrides) -> History:
    return fit(model, x, **{**SETTINGS, "epochs": 2, **overrides})


def _assert_same_weights(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def _without_seconds(history: History) -> dict:
    d = history.to_dict()
    for record in d["epochs"]:
        record.pop("seconds")
    return d


def test_short_training_lowers_the_loss(fashion_dir):
    train_x, test_x = _fashion(fashion_dir)
    model = _model(hidden=[64])
    history = _run(model, train_x, test_x=test_x, epochs=3)
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3]
    assert len(history.iteration_loss) == 3 * math.ceil(len(train_x) / 32)
    train_losses = [r["train_loss"] for r in history.epochs]
    assert train_losses[0] > train_losses[1] > train_losses[2]
    assert history.epochs[-1]["test_loss"] < history.epochs[0]["test_loss"]
    record = history.epochs[-1]
    assert record["test_loss"] == pytest.approx(record["test_reconstruction"] + record["test_kl"])
    assert record["train_kl"] > 0 and record["seconds"] > 0
    assert sum(history.iteration_loss[-5:]) < sum(history.iteration_loss[:5])


@pytest.mark.parametrize("binarize, kl", [("dynamic", "monte-carlo"), ("static", "closed-form")])
def test_resume_continues_exactly(tmp_path, binarize, kl):
    """2 epochs straight == 1 epoch + resume for 1 more: same weights, optimizer, history."""
    x, test_x = _synthetic(100), _synthetic(40, seed=1)
    settings = dict(binarize=binarize, kl=kl, test_x=test_x, seed=7)
    straight = _model()
    history_straight = _run(straight, x, epochs=2, checkpoint=tmp_path / "straight.pt", **settings)

    _run(_model(), x, epochs=1, checkpoint=tmp_path / "split.pt", **settings)
    resumed = _model(seed=99)  # different initial weights: everything must come from the file
    history_resumed = _run(resumed, x, epochs=2, checkpoint=tmp_path / "split.pt", resume=True, **settings)

    _assert_same_weights(straight, resumed)
    assert _without_seconds(history_straight) == _without_seconds(history_resumed)
    a, b = load_checkpoint(tmp_path / "straight.pt"), load_checkpoint(tmp_path / "split.pt")
    assert a["epoch"] == b["epoch"] == 2
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


class _InterruptAt:
    def __init__(self, iteration: int):
        self.iteration = iteration

    def on_iteration(self, state):
        if state.iteration == self.iteration:
            raise KeyboardInterrupt


def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path, capsys):
    x = _synthetic(100)  # 4 batches per epoch
    straight = _model()
    history_straight = _run(straight, x, epochs=2)

    path = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        _run(_model(), x, epochs=2, checkpoint=path, callbacks=[_InterruptAt(4 + 3)])
    message = capsys.readouterr().err
    assert str(path) in message and "resume=True" in message and "epoch 1" in message
    assert not path.with_suffix(".pt.tmp").exists()
    model, ckpt = load_model(path)
    assert ckpt["epoch"] == 1 and len(ckpt["history"]["epochs"]) == 1
    assert len(ckpt["history"]["iteration_loss"]) == 4

    resumed = _model(seed=5)
    history_resumed = _run(resumed, x, epochs=2, checkpoint=path, resume=True)
    _assert_same_weights(straight, resumed)
    assert _without_seconds(history_straight) == _without_seconds(history_resumed)


def test_ctrl_c_in_the_first_epoch_keeps_the_initial_weights(tmp_path):
    path = tmp_path / "checkpoint.pt"
    initial = _model()
    with pytest.raises(KeyboardInterrupt):
        _run(_model(), _synthetic(100), checkpoint=path, callbacks=[_InterruptAt(2)])
    model, ckpt = load_model(path)
    assert ckpt["epoch"] == 0 and ckpt["history"]["epochs"] == []
    _assert_same_weights(model, initial)


class _PoisonWeightsAt:
    """A callback that breaks the model after a given step, as a bad update would."""

    def __init__(self, iteration: int):
        self.iteration = iteration

    def on_iteration(self, state):
        if state.iteration == self.iteration:
            with torch.no_grad():
                next(state.model.parameters()).fill_(float("nan"))


def test_images_outside_0_1_are_refused_before_training(tmp_path):
    for bad in (_synthetic(64) * 255, _synthetic(64).masked_fill(torch.rand(64, 1, 28, 28) < 0.01, float("nan"))):
        with pytest.raises(ValueError, match=r"\[0, 1\].*x.float\(\) / 255"):
            _run(_model(), bad, checkpoint=tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()  # nothing written for a run that cannot start


def test_nan_loss_names_epoch_and_iteration(tmp_path):
    x = _synthetic(100)
    path = tmp_path / "checkpoint.pt"
    model = _model()
    _run(model, x, epochs=1, checkpoint=path)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, iteration 2 \(iteration 6 of the run\)") as info:
        _run(model, x, epochs=3, checkpoint=path, resume=True, callbacks=[_PoisonWeightsAt(5)])
    error = info.value
    assert isinstance(error, FloatingPointError) and (error.epoch, error.iteration) == (2, 2)
    assert "lower learning rate" in str(error) and "[0, 1]" in str(error)
    assert str(path) in str(error) and "holds epoch 1" in str(error)
    assert load_checkpoint(path)["epoch"] == 1  # the last good epoch is still there

    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, iteration \d+.*learning rate \(now 1e\+06\)"):
        _run(_model(), x, epochs=5, lr=1e6)  # diverges


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    assert pick_device("auto").type == expected
    if not torch.cuda.is_available():
        assert pick_device("auto").type != "cuda"
        with pytest.raises(ValueError, match="device='cuda'.*CUDA is not available"):
            pick_device("cuda")
    else:
        with pytest.raises(ValueError, match="cuda:99"):
            pick_device("cuda:99")
    if not mps_available():
        with pytest.raises(ValueError, match="device='mps'"):
            pick_device("mps")
    for wrong in ("tpu", "gpu0", 3):
        with pytest.raises(ValueError, match="device"):
            pick_device(wrong)


def test_checkpoint_is_weights_only_and_rebuilds_the_model(tmp_path):
    x = _synthetic(64)
    model = _model()
    path = tmp_path / "checkpoint.pt"
    _run(model, x, epochs=1, checkpoint=path, config={"recipe": "demo", "dataset": "fashion-mnist"})
    raw = torch.load(path, weights_only=True)  # no pickled classes or numpy arrays inside
    assert raw["epoch"] == 1
    assert raw["config"]["model"] == {"arch": "mlp", "hidden": [32], "latent_dim": 2}
    assert raw["config"]["training"]["lr"] == 1e-3 and raw["config"]["training"]["epochs"] == 1
    assert raw["config"]["recipe"] == "demo" and raw["config"]["dataset"] == "fashion-mnist"
    assert {"model", "optimizer", "history", "rng"} <= raw.keys()
    assert not list(tmp_path.glob("*.tmp"))

    rebuilt, ckpt = load_model(path)
    assert not rebuilt.training
    _assert_same_weights(model, rebuilt)
    assert torch.equal(rebuilt.reconstruct(x[:4]), model.reconstruct(x[:4]))
    assert History.from_dict(ckpt["history"]).epochs == History.from_dict(raw["history"]).epochs
    assert load_checkpoint(tmp_path)["epoch"] == 1  # the run's folder works too

    save_checkpoint(tmp_path / "again.pt", model=model)
    assert load_model(tmp_path / "again.pt")[1]["epoch"] == 0


def test_bad_checkpoints_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    path = tmp_path / "good.pt"
    save_checkpoint(path, model=_model())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="weights.pt.*not a vae-course checkpoint"):
        load_checkpoint(other)
    pickled = tmp_path / "pickled.pt"
    torch.save({"history": History()}, pickled)  # a dataclass: refused by weights_only
    with pytest.raises(CheckpointError, match="pickled.pt.*weights_only"):
        load_checkpoint(pickled)


class _Recorder:
    def __init__(self):
        self.iterations, self.epochs = [], []

    def on_iteration(self, state):
        assert len(state.history.iteration_loss) == state.iteration
        assert state.loss == state.history.iteration_loss[-1]
        self.iterations.append((state.epoch, state.iteration))
        torch.randn(10)  # a callback's randomness must not change the training

    def on_epoch_end(self, state):
        assert state.history.epochs[-1]["epoch"] == state.epoch
        assert state.loss == state.history.epochs[-1]["train_loss"]
        self.epochs.append(state.epoch)


class _EpochsOnly:
    def __init__(self):
        self.calls = 0

    def on_epoch_end(self, state):
        self.calls += 1


def test_callbacks_are_called_once_per_iteration_and_epoch():
    x = _synthetic(100)  # 4 batches of 32, 32, 32, 4
    recorder, epochs_only = _Recorder(), _EpochsOnly()
    watched = _model()
    _run(watched, x, epochs=2, callbacks=[recorder, epochs_only])
    assert recorder.iterations == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6), (2, 7), (2, 8)]
    assert recorder.epochs == [1, 2] and epochs_only.calls == 2
    unwatched = _model()
    _run(unwatched, x, epochs=2)
    _assert_same_weights(watched, unwatched)
    with pytest.raises(TypeError, match="on_iteration"):
        _run(_model(), x, callbacks=[lambda state: None])


def test_drop_last_and_conditional_models():
    x, y = _synthetic(100), torch.arange(100) % 10
    history = _run(_model(), x, epochs=1, drop_last=True)
    assert len(history.iteration_loss) == 3  # the partial batch of 4 is skipped
    with pytest.raises(ValueError, match="no mini-batches|leaves no batch"):
        _run(_model(), x[:10], drop_last=True)
    torch.manual_seed(0)
    cvae = build_model("cvae-mlp", hidden=[32], latent_dim=2)
    with pytest.raises(ValueError, match="train_y"):
        _run(cvae, x)
    history = _run(cvae, x, train_y=y, test_x=x[:20], test_y=y[:20], epochs=1)
    assert math.isfinite(history.epochs[0]["test_loss"])


def test_history_round_trip():
    history = History([3.0, 2.0], [{"epoch": 1, "train_loss": 2.5, "test_loss": None, "seconds": 0.1}])
    again = History.from_dict(history.to_dict())
    assert again == history and again.epochs[0] is not history.epochs[0]


def test_train_recipe_writes_a_checkpoint(tmp_path, monkeypatch, fashion_dir):
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    model, history = train_recipe("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=128,
                                  device="cpu", out=tmp_path / "run", progress=False,
                                  lr=2e-3, model_kwargs={"latent_dim": 3})
    assert model.latent_dim == 3 and len(history.epochs) == 1
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    config = ckpt["config"]
    assert config["recipe"] == "pytorch-mlp" and config["dataset"] == "fashion-mnist"
    assert config["model"] == {"arch": "mlp", "hidden": [128], "latent_dim": 3}
    assert config["training"]["lr"] == 2e-3 and config["training"]["beta"] == 0.001
    assert config["training"]["reconstruction"] == "mean-mse"
    with pytest.raises(TypeError, match="learning_rate"):
        train_recipe("pytorch-mlp", dataset="fashion-mnist", epochs=1, subset=128, device="cpu",
                     progress=False, learning_rate=1.0)


def test_matlab_2019_takes_its_batches_in_the_files_order(tmp_path, monkeypatch, fashion_dir):
    """R2019b never shuffles: the recipe's shuffle=False reaches the batches (whose order
    test_data checks) and the checkpoint; the other sources reshuffle every epoch."""
    import vae_course.train as train_module
    seen = []

    class SpyBatches(train_module.Batches):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs["shuffle"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(train_module, "Batches", SpyBatches)
    monkeypatch.setenv("VAE_COURSE_DATA", str(fashion_dir))
    _, history = train_recipe("matlab-2019", dataset="fashion-mnist", epochs=1, subset=1100,
                              device="cpu", out=tmp_path / "run", progress=False)
    assert len(history.iteration_loss) == 2  # 1100 // 512 whole batches, the rest dropped
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]["training"]["shuffle"] is False
    train_recipe("tf-cvae", dataset="fashion-mnist", epochs=1, subset=64, device="cpu", progress=False)
    assert seen == [False, True]


# --------------------------------------------------------------------------- speed options

def _conv_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("matlab-2022", latent_dim=4)


def test_channels_last_trains_the_same_model_and_hands_it_back_in_the_usual_layout(fashion_dir):
    # Real images, not uniform noise: on noise the two float32 paths part after a few steps
    # under some kernels (a full Adam step apart after 6 steps at one thread with oneDNN capped
    # at AVX2, or ATen's default kernels, on an Intel Xeon), although every step's gradients
    # agree to 1e-5 of their largest; on these 96 images they stay within 1e-5.
    train_x, test_x = _fashion(fashion_dir)
    x, test_x = train_x[:96], test_x[:32]
    plain, fast = _conv_model(), _conv_model()
    history_plain = _run(plain, x, test_x=test_x, reconstruction="half-sse", channels_last=False)
    history_fast = _run(fast, x, test_x=test_x, reconstruction="half-sse", channels_last=True)
    # Only the order of floating-point sums differs: losses agree to float32 rounding, weights
    # as the tolerance policy allows after Adam steps (vae_course.tolerances, rule 3).
    steps = len(history_plain.iteration_loss)
    assert_one_pass_close(history_fast.iteration_loss, history_plain.iteration_loss, "iteration losses")
    assert_one_pass_close(history_fast.epochs[-1]["test_loss"], history_plain.epochs[-1]["test_loss"],
                          "test loss")
    assert all(p.is_contiguous() for p in fast.state_dict().values())
    assert_close_after_steps(fast.state_dict(), plain.state_dict(), lr=SETTINGS["lr"], steps=steps)


def test_channels_last_is_on_by_default_for_convolutional_models_on_the_cpu(tmp_path):
    x = _synthetic(64)
    _run(_conv_model(), x, epochs=1, checkpoint=tmp_path / "conv.pt")
    assert load_checkpoint(tmp_path / "conv.pt")["config"]["training"]["channels_last"] is True
    torch.manual_seed(0)
    _run(build_model("mlp", hidden=[16], latent_dim=2), x, epochs=1, checkpoint=tmp_path / "mlp.pt")
    assert load_checkpoint(tmp_path / "mlp.pt")["config"]["training"]["channels_last"] is False
    _run(_conv_model(), x, epochs=1, checkpoint=tmp_path / "off.pt", channels_last=False)
    assert load_checkpoint(tmp_path / "off.pt")["config"]["training"]["channels_last"] is False


def test_channels_last_resumes_exactly(tmp_path):
    x = _synthetic(96)
    settings = dict(reconstruction="half-sse", channels_last=True, seed=3)
    straight = _conv_model()
    _run(straight, x, epochs=2, **settings)
    _run(_conv_model(), x, epochs=1, checkpoint=tmp_path / "split.pt", **settings)
    resumed = _conv_model(seed=99)
    _run(resumed, x, epochs=2, checkpoint=tmp_path / "split.pt", resume=True, **settings)
    _assert_same_weights(straight, resumed)
    saved = load_checkpoint(tmp_path / "split.pt")
    assert all(t.is_contiguous() for t in saved["model"].values())
    assert saved["config"]["training"]["channels_last"] is True


def test_bf16_on_the_cpu_runs_the_forward_pass_in_bfloat16(fashion_dir, capsys):
    train_x, test_x = _fashion(fashion_dir)
    train_x, test_x = train_x[:192], test_x[:64]
    fp32, bf16 = _conv_model(), _conv_model()
    history_fp32 = _run(fp32, train_x, test_x=test_x, epochs=2)
    history_bf16 = _run(bf16, train_x, test_x=test_x, epochs=2, bf16=True)
    assert "no effect" not in capsys.readouterr().err
    assert history_bf16.iteration_loss != history_fp32.iteration_loss  # autocast did something...
    # ...while weights, gradients, Adam and the losses stay float32, so it learns the same.
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    assert history_bf16.iteration_loss[-1] < history_bf16.iteration_loss[0]
    for a, b in zip(history_bf16.epochs, history_fp32.epochs):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=0.02)
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=0.02)


def test_compile_takes_true_false_or_a_torch_compile_mode():
    with pytest.raises(ValueError, match="reduce-overhead"):
        _run(_conv_model(), _synthetic(32), torch_compile="cuda-graphs")


# --------------------------------------------------------------------------- other devices

def _as_if_written_on_cuda(path: Path) -> None:
    """Rewrite a CPU checkpoint the way a CUDA run writes it: fused Adam, a CUDA RNG stream."""
    ckpt = torch.load(path, weights_only=True)
    for group in ckpt["optimizer"]["param_groups"]:
        group["fused"], group["foreach"] = True, None
    ckpt["rng"]["device"] = "cuda"
    ckpt["rng"]["cuda"] = torch.zeros(16, dtype=torch.uint8)
    ckpt["config"]["training"]["device"] = "cuda"
    torch.save(ckpt, path)


def test_a_cuda_checkpoint_resumes_on_the_cpu_with_the_cpu_update_rule(tmp_path, capsys):
    x = _synthetic(100)
    straight = _model()
    _run(straight, x, epochs=2, seed=4)
    _run(_model(), x, epochs=1, checkpoint=tmp_path / "gpu.pt", seed=4)
    _as_if_written_on_cuda(tmp_path / "gpu.pt")
    resumed = _model(seed=99)
    _run(resumed, x, epochs=2, checkpoint=tmp_path / "gpu.pt", resume=True, seed=4)
    assert "saved on cuda and is restored on cpu" in capsys.readouterr().err
    group = load_checkpoint(tmp_path / "gpu.pt")["optimizer"]["param_groups"][0]
    assert not group["fused"] and group["foreach"]  # the CPU's rule, not the file's fused kernel
    # The weights, Adam's moments and the CPU stream continued; fused CPU Adam would round
    # differently, so bit-identical weights also show the update rule was reset.
    _assert_same_weights(straight, resumed)


def test_load_optimizer_state_keeps_this_devices_update_rule():
    from vae_course.resume import load_optimizer_state
    from vae_course.train import make_optimizer
    params = [torch.nn.Parameter(torch.ones(3))]
    source = torch.optim.Adam(params, lr=1e-3, fused=True)
    params[0].grad = torch.ones(3)
    source.step()
    target = make_optimizer(params, 1e-3, torch.device("cpu"))
    load_optimizer_state(target, source.state_dict())
    assert target.param_groups[0]["fused"] in (None, False) and target.param_groups[0]["foreach"]
    state = target.state[params[0]]
    assert state["step"].device.type == "cpu" and float(state["step"]) == 1.0
    assert torch.equal(state["exp_avg"], source.state[params[0]]["exp_avg"])


def test_deterministic_is_recorded_and_switched_off_afterwards(tmp_path):
    assert not torch.are_deterministic_algorithms_enabled()
    _run(_model(), _synthetic(64), epochs=1, deterministic=True, checkpoint=tmp_path / "d.pt")
    assert not torch.are_deterministic_algorithms_enabled()
    assert load_checkpoint(tmp_path / "d.pt")["config"]["training"]["deterministic"] is True


def test_compile_on_a_device_inductor_cannot_serve_says_to_use_compile_false():
    from vae_course.devices import check_compilable
    with pytest.raises(ValueError, match="torch_compile=False"):
        check_compilable(torch.device("mps"), True)
    check_compilable(torch.device("cpu"), True)  # the CPU is always served


def test_bf16_falls_back_where_the_device_has_no_bfloat16(capsys, monkeypatch):
    import vae_course.train as train
    monkeypatch.setattr(train, "bf16_supported", lambda device: False)  # as on a T4
    history = _run(_model(), _synthetic(32), epochs=1, bf16=True)
    assert "bf16=True has no effect" in capsys.readouterr().err and history.iteration_loss


def test_bad_labels_are_refused_once_where_they_enter():
    torch.manual_seed(0)
    model = build_model("cvae-mlp", hidden=[16], latent_dim=2)
    x, y = _synthetic(32), torch.arange(32) % 10
    with pytest.raises(ValueError, match=r"train_y must lie in 0..9, got 0..10"):
        _run(model, x, train_y=torch.where(y == 9, 10, y))
    with pytest.raises(ValueError, match=r"test_y must lie in 0..9"):
        _run(model, x, train_y=y, test_x=x, test_y=y - 1)


@each_device
def test_resume_on_each_device_repeats_what_the_course_promises_there(device, tmp_path):
    """CPU: bit for bit. CUDA: bit for bit with deterministic=True. MPS: within the tolerance policy."""
    x = _synthetic(96)
    settings = dict(device=device, seed=5, deterministic=device == "cuda", channels_last=False)
    straight = _conv_model()
    _run(straight, x, epochs=2, **settings)
    _run(_conv_model(), x, epochs=1, checkpoint=tmp_path / "split.pt", **settings)
    resumed = _conv_model(seed=99)
    _run(resumed, x, epochs=2, checkpoint=tmp_path / "split.pt", resume=True, **settings)
    if device in ("cpu", "cuda"):
        _assert_same_weights(straight, resumed)
    else:
        steps = 2 * len(range(0, 96, SETTINGS["batch_size"]))
        assert_close_after_steps(resumed.state_dict(), straight.state_dict(), lr=SETTINGS["lr"], steps=steps)
