"""The training engine: ``fit`` a VAE, checkpoint it every epoch, resume it exactly (chapter 6).

One plain loop, written out so it can be read top to bottom:

    for each epoch:  for each mini-batch:  forward -> ELBO terms -> mean loss -> backward -> Adam step
                     then test ELBO, a history record, an atomic checkpoint and the callbacks

Choices that keep it fast and honest:

- The data live on the device (``vae_course.data.Batches`` slices resident tensors), so there
  is no DataLoader and no host-to-device copy per step.
- The loop never waits for the GPU to report a number.  Each step writes its batch means
  into a small device tensor; every ``SYNC_EVERY`` steps (every step on the CPU, where this
  costs nothing) the values are copied to the host in one go, checked for NaN/inf, appended
  to the history and handed to callbacks and the progress bar.
- Everything random is seeded, the mini-batch order is a function of (seed, epoch), and a
  checkpoint stores the random-number-generator state, so ``resume=True`` continues with
  bit-for-bit the same numbers as a run that was never interrupted - on the CPU, on the
  same machine and thread count.  On a GPU that holds with ``deterministic=True`` (cuDNN and
  cuBLAS may otherwise add in a different order each run); resuming on another kind of
  device continues the weights and Adam exactly but not the device's random stream (a
  warning says so).  How numbers from different machines compare: ``vae_course.tolerances``.
- Test evaluation and callbacks run with the random state saved and restored around them,
  so looking at a model (or not) never changes how it trains.
- Checkpoints hold only tensors and plain Python values; they load with
  ``torch.load(path, weights_only=True)``, which cannot run code from a file you downloaded.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from . import models
from .data import Batches
from .evaluate import evaluate_elbo
from .losses import elbo_terms
from .rng import get_rng_state, preserved_rng, seed_everything, set_rng_state  # noqa: F401 (re-exported)

CHECKPOINT_FORMAT = "vae-course-checkpoint"
CHECKPOINT_VERSION = 1
SYNC_EVERY = 50  # on a GPU, read losses back (one sync) every this many steps

# Keys of a checkpoint's config["training"] that change the numbers a run produces; resuming
# with different values is allowed (e.g. a lower lr after a NaN) but is no longer exact.
TRAJECTORY_KEYS = ("batch_size", "lr", "reconstruction", "kl", "beta", "sigma", "binarize",
                   "drop_last", "seed")

# train_recipe: overrides that change recipe fields, and fit arguments recipes do not carry.
RECIPE_OVERRIDES = ("model_kwargs", "reconstruction", "kl", "beta", "sigma", "lr", "batch_size",
                    "binarize", "drop_last")
FIT_OVERRIDES = ("seed", "bf16", "compile", "channels_last", "deterministic")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


# --------------------------------------------------------------------------- devices and seeds

def has_convolutions(model: nn.Module) -> bool:
    """Whether ``model`` has a 2-D (transposed) convolution, the layers channels_last speeds up."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """The device to train on: ``"auto"`` picks CUDA, then Apple's MPS, then the CPU.

    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` and ``"mps"`` force a device; asking for one that
    this machine does not have is an error rather than a silent fallback to the CPU.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    if not isinstance(preference, str):
        raise ValueError(f"device must be a string such as 'auto', 'cpu', 'cuda' or 'mps'; "
                         f"got {preference!r}")
    name = preference.strip().lower()
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={preference!r} is not a device name; use 'auto', 'cpu', "
                         f"'cuda', 'cuda:N' or 'mps'") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={preference!r}: CUDA is not available here (no NVIDIA GPU, "
                             f"or a CPU-only torch build); use device='auto' or 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={preference!r}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s), numbered from 0")
        return device
    if device.type == "mps":
        if not has_mps:
            raise ValueError(f"device={preference!r}: Apple's MPS backend is not available here; "
                             f"use device='auto' or 'cpu'")
        return device
    raise ValueError(f"device={preference!r} is not supported; use 'auto', 'cpu', 'cuda' or 'mps'")


# --------------------------------------------------------------------------- errors, history, state

class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names where and what to try."""

    def __init__(self, epoch: int, iteration: int, loss: float, *, global_iteration: int | None = None,
                 lr: float | None = None, checkpoint: str | os.PathLike | None = None,
                 saved_epoch: int | None = None):
        self.epoch, self.iteration, self.loss = epoch, iteration, loss
        self.global_iteration = global_iteration
        where = f"epoch {epoch}, iteration {iteration}"
        if global_iteration is not None:
            where += f" (iteration {global_iteration} of the run)"
        lr_text = f" (now {lr:g})" if lr is not None else ""
        message = (f"the training loss became {loss} at {where}. Try a lower learning rate{lr_text}, "
                   f"e.g. 10x smaller; check that the images are finite and lie in [0, 1] "
                   f"(x.min(), x.max(), torch.isfinite(x).all()); with bf16=True, try bf16=False.")
        if checkpoint is not None:
            message += (f" The checkpoint {checkpoint} still holds epoch {saved_epoch}, the last "
                        f"completed one; continue from it with resume=True and the lower lr.")
        super().__init__(message)


class CheckpointError(ValueError):
    """A file that is not a readable vae-course checkpoint (corrupt, truncated, or something else)."""


@dataclass
class History:
    """What a run recorded: the loss of every iteration and a summary of every epoch.

    Each ``epochs`` entry is a dict with ``epoch`` (1-based), ``train_loss``,
    ``train_reconstruction``, ``train_kl`` (means over the epoch's images, while the weights
    were changing, as Keras and MATLAB report them), ``test_loss``, ``test_reconstruction``,
    ``test_kl`` (after the epoch; ``None`` without test data) and ``seconds`` (wall time).
    """
    iteration_loss: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"iteration_loss": [float(v) for v in self.iteration_loss],
                "epochs": [dict(record) for record in self.epochs]}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls(iteration_loss=list(data.get("iteration_loss", [])),
                   epochs=[dict(record) for record in data.get("epochs", [])])


@dataclass
class TrainState:
    """What callbacks see.  ``iteration`` counts steps over the whole run (1-based, equal to
    ``len(history.iteration_loss)``); ``loss`` is that step's batch loss, or at epoch end the
    epoch's mean train loss."""
    model: nn.Module
    history: History
    epoch: int
    iteration: int
    loss: float | None
    epochs: int
    iterations_per_epoch: int
    device: torch.device


def _check_callbacks(callbacks: Iterable[Any]) -> list[Any]:
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not (callable(getattr(cb, "on_iteration", None)) or callable(getattr(cb, "on_epoch_end", None))):
            raise TypeError(f"callback {cb!r} has neither on_iteration(state) nor on_epoch_end(state); "
                            f"pass objects such as vae_course.plots.LiveLossPlot()")
    return callbacks


# --------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    config: dict | None = None, history: History | None = None, epoch: int = 0,
                    rng_state: dict | None = None) -> Path:
    """Write a checkpoint atomically: to ``path.tmp``, flushed to disk, then renamed over ``path``.

    A crash or Ctrl-C in the middle leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = {"model": dict(model.config), "training": {}, "recipe": None, "dataset": None}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "epoch": int(epoch),
        "model": {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "config": config,
        "history": (history or History()).to_dict(),
        "rng": rng_state,
        "torch_version": str(torch.__version__),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check that it is one of ours.

    A folder holding ``checkpoint.pt`` (what ``train_recipe(out=...)`` writes) works too.
    """
    path = Path(path)
    if path.is_dir() and (path / "checkpoint.pt").is_file():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path, or train first "
                                f"(train_recipe(..., out=FOLDER) or `vae-course train --out FOLDER`)")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; pass the checkpoint file (e.g. {path / 'checkpoint.pt'})")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:2] not in (b"PK", b"\x80\x02") and head[:1] != b"\x80":  # zip (torch >= 1.6) or pickle
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (it starts with {head!r}, not a "
                              f"zip or pickle signature); pass the checkpoint.pt written by "
                              f"`vae-course train` or vae_course.train.fit")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for corrupt, truncated or foreign files
        if "weights only" in str(error).lower():
            why = ("it holds Python objects other than tensors and plain values, which "
                   "torch.load(weights_only=True) refuses to run; it was not written by vae_course.train")
        else:
            first_line = (str(error).strip().splitlines() or [""])[0]
            why = (f"{type(error).__name__}: {first_line}; the file is corrupt or truncated "
                   f"(an interrupted copy?) or is not a torch file")
        raise CheckpointError(f"cannot read checkpoint {path}: {why}. Retrain, or restore the file "
                              f"from a backup") from error
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is a torch file but not a vae-course checkpoint (found {keys}); "
                              f"load it with torch.load, or pass a checkpoint written by vae_course.train")
    missing = [k for k in ("epoch", "model", "config", "history") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}; it is damaged or from "
                              f"an incompatible version (format version {ckpt.get('version')})")
    return ckpt


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint was trained as, load its weights, put it in eval mode.

    Returns ``(model, checkpoint)``; ``checkpoint["config"]`` and ``["history"]`` say how it
    was trained and how it went.
    """
    ckpt = load_checkpoint(path)
    model_config = ckpt["config"].get("model") if isinstance(ckpt["config"], dict) else None
    if not isinstance(model_config, dict) or "arch" not in model_config:
        raise CheckpointError(f"checkpoint {path} does not say which model it holds "
                              f"(config['model'] = {model_config!r})")
    model = models.build_model(**model_config)
    model.load_state_dict(ckpt["model"])
    return model.to(pick_device(device)).eval(), ckpt


# --------------------------------------------------------------------------- the training loop

def make_optimizer(params: Iterable[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fastest update rule that is exact: one fused kernel on CUDA, else foreach.

    (PyTorch also has a fused CPU Adam; it is faster but rounds differently from the reference
    implementation, see the course's notes, so the CPU uses foreach.)
    """
    if device.type == "cuda":
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load Adam's moments from a checkpoint but keep the update rule chosen for this device.

    ``load_state_dict`` would also copy the saved ``fused``/``foreach`` flags: a checkpoint
    written on CUDA (fused=True) would bring the fused kernel to the CPU or a Mac.  The step
    counters go where this rule expects them (on the device for fused, else on the CPU).
    """
    chosen = [{k: group[k] for k in ("fused", "foreach", "capturable") if k in group}
              for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, keep in zip(optimizer.param_groups, chosen):
        group.update(keep)
        on_device = bool(group.get("fused") or group.get("capturable"))
        for param in group["params"]:
            slot = optimizer.state.get(param, {})
            if isinstance(slot.get("step"), torch.Tensor):
                slot["step"] = slot["step"].to(param.device if on_device else "cpu", torch.float32)


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast makes sense here: the CPU, or a GPU with bfloat16 units (not a T4)."""
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return False


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Make CUDA's kernels deterministic for a block (cuDNN and cuBLAS pick reproducible algorithms).

    On the CPU the course's kernels are deterministic already; on a GPU, convolutions and
    matrix products may otherwise add in a different order from run to run.
    """
    if not enabled:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def _float_output(out: models.VAEOutput) -> models.VAEOutput:
    """bf16 autocast leaves bf16 tensors; the losses are computed in float32."""
    return type(out)(*(t.float() for t in out))


def fit(model: nn.Module, train_x: torch.Tensor, *, train_y: torch.Tensor | None = None,
        test_x: torch.Tensor | None = None, test_y: torch.Tensor | None = None,
        epochs: int, batch_size: int, lr: float, reconstruction: str, kl: str, beta: float,
        sigma: float | None = None, binarize: str, drop_last: bool, device: str | torch.device = "auto",
        seed: int = 0, bf16: bool = False, compile: bool | str = False, channels_last: bool | None = None,
        deterministic: bool = False, callbacks: Sequence[Any] = (),
        checkpoint: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
        config: dict | None = None) -> History:
    """Train ``model`` in place with Adam on the negative ELBO; return the :class:`History`.

    ``reconstruction``, ``kl``, ``beta``, ``sigma`` choose the loss (``vae_course.losses.elbo_terms``);
    ``binarize`` is ``"none"``, ``"static"`` or ``"dynamic"`` (``vae_course.data.Batches``), and the
    test set is binarized the same way.  With ``checkpoint=PATH`` a checkpoint is written before
    the first epoch and after every epoch; ``resume=True`` continues from it (if it exists) up
    to ``epochs`` in total.  ``config`` adds entries such as ``{"recipe": ..., "dataset": ...}``
    to the configuration stored in the checkpoint.

    Speed options (they change the numbers only by float rounding): ``channels_last`` stores
    convolution weights as NHWC during training, so the convolutions run in the layout oneDNN
    prefers without a layout conversion per layer (the model is handed back in the usual
    layout); the default ``None`` turns it on for models with convolutions on the CPU, where
    ``benchmarks/speed.py`` measured it faster for the MATLAB models and no slower for the
    TensorFlow one, and leaves it off elsewhere.  ``bf16=True`` runs the forward pass under bfloat16 autocast (CUDA and
    CPU; the losses, weights and Adam stay float32); ``compile=True`` wraps the model in
    ``torch.compile``, and a string picks its mode (``"reduce-overhead"`` replays the
    model's forward and backward kernels as CUDA graphs).  See ``benchmarks/`` for what each
    one gives.  ``deterministic=True`` makes a GPU run repeat bit for bit (slower; the CPU
    is deterministic already).  The number of CPU threads is the caller's choice
    (``torch.set_num_threads`` or ``OMP_NUM_THREADS``).
    """
    device = pick_device(device)
    callbacks = _check_callbacks(callbacks)
    conditional = bool(getattr(model, "conditional", False))
    if not isinstance(train_x, torch.Tensor):
        raise TypeError(f"train_x must be a torch.Tensor of images (N, 1, 28, 28); got {type(train_x).__name__}")
    if conditional and (train_y is None or (test_x is not None and test_y is None)):
        raise ValueError(f"{type(model).__name__} is conditional: pass the labels as train_y= "
                         f"(and test_y= with test_x=)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
    use_bf16 = bool(bf16) and bf16_supported(device)
    if bf16 and not use_bf16:
        print(f"bf16=True has no effect on {device} (no bfloat16 support, e.g. a T4 or a Mac): "
              f"training in float32", file=sys.stderr)
    if not (isinstance(compile, bool) or compile in COMPILE_MODES):
        raise ValueError(f"compile must be True, False or one of torch.compile's modes "
                         f"{', '.join(COMPILE_MODES)}; got {compile!r}")
    if compile:
        _check_compilable(device, compile)
    if channels_last is None:
        channels_last = device.type == "cpu" and has_convolutions(model)
    if conditional:  # once, here, so the forward pass never has to ask the GPU about labels
        models.check_labels(train_y, model.num_classes, "train_y")
        if test_y is not None:
            models.check_labels(test_y, model.num_classes, "test_y")

    training = {"epochs": epochs, "batch_size": int(batch_size), "lr": float(lr),
                "reconstruction": reconstruction, "kl": kl, "beta": float(beta),
                "sigma": None if sigma is None else float(sigma), "binarize": binarize,
                "drop_last": bool(drop_last), "device": str(device), "seed": int(seed),
                "bf16": bool(bf16), "compile": compile, "channels_last": bool(channels_last),
                "deterministic": bool(deterministic)}
    full_config = {"model": dict(model.config), "training": training, "recipe": None, "dataset": None}
    full_config.update(config or {})
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH (the file to continue from)")

    seed_everything(seed)
    model.to(device)
    if channels_last:  # before the optimizer is built, so its state takes the same layout
        model.to(memory_format=torch.channels_last)
    train_x = train_x.to(device)
    train_y = train_y.to(device) if (conditional and train_y is not None) else None
    if test_x is not None:
        test_x = test_x.to(device)
        test_y = test_y.to(device) if (conditional and test_y is not None) else None
    optimizer = make_optimizer(model.parameters(), lr, device)
    history = History()
    start_epoch = 0

    if resume and checkpoint.exists():
        saved = load_checkpoint(checkpoint)
        _check_resumable(saved["config"], full_config, checkpoint)
        model.load_state_dict(saved["model"])
        load_optimizer_state(optimizer, saved["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        history = History.from_dict(saved["history"])
        start_epoch = int(saved["epoch"])
        set_rng_state(saved["rng"], device)  # warns when saved on another kind of device
    elif checkpoint is not None:
        # Epoch 0: so even an interrupted first epoch leaves something to resume from.
        save_checkpoint(checkpoint, model=model, optimizer=optimizer, config=full_config,
                        history=history, epoch=0, rng_state=get_rng_state(device))
    saved_epoch = start_epoch  # the epoch the checkpoint file holds

    batches = Batches(train_x, train_y, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                      binarize=binarize, seed=seed)
    n_batches = len(batches)
    if n_batches == 0:
        raise ValueError(f"no mini-batches: {len(train_x)} training images with batch_size={batch_size} "
                         f"and drop_last=True; use a smaller batch_size or drop_last=False")
    step_model = model
    if compile:
        step_model = torch.compile(model, mode=None if compile is True else compile)
    on_iteration = [cb.on_iteration for cb in callbacks if callable(getattr(cb, "on_iteration", None))]
    on_epoch_end = [cb.on_epoch_end for cb in callbacks if callable(getattr(cb, "on_epoch_end", None))]
    sync_every = 1 if device.type == "cpu" else SYNC_EVERY
    loss_kwargs = {"reconstruction": reconstruction, "kl": kl, "beta": beta, "sigma": sigma}

    bar = tqdm(total=epochs * n_batches, initial=min(start_epoch, epochs) * n_batches,
               disable=not progress, unit="it", dynamic_ncols=True, desc=f"epoch {start_epoch}/{epochs}")
    epoch = start_epoch
    settings = contextlib.ExitStack()
    settings.enter_context(deterministic_algorithms(deterministic))
    try:
        for epoch in range(start_epoch + 1, epochs + 1):
            started = time.perf_counter()
            bar.set_description(f"epoch {epoch}/{epochs}")
            model.train()
            batches.set_epoch(epoch)
            step_means = torch.zeros(n_batches, 3, device=device)  # loss, reconstruction, kl
            sizes: list[int] = []
            totals = [0.0, 0.0, 0.0]
            done = 0  # steps already read back to the host

            def read_back(upto: int) -> None:
                """One device->host copy for steps done..upto-1: check, record, report."""
                nonlocal done
                for j, (loss, rec, kl_value) in enumerate(step_means[done:upto].tolist(), start=done):
                    if not math.isfinite(loss):
                        raise NonFiniteLossError(epoch, j + 1, loss,
                                                 global_iteration=len(history.iteration_loss) + 1, lr=lr,
                                                 checkpoint=checkpoint, saved_epoch=saved_epoch)
                    n = sizes[j]
                    totals[0] += loss * n
                    totals[1] += rec * n
                    totals[2] += kl_value * n
                    history.iteration_loss.append(loss)
                    if on_iteration:
                        state = TrainState(model, history, epoch, len(history.iteration_loss), loss,
                                           epochs, n_batches, device)
                        with preserved_rng(device):
                            for callback in on_iteration:
                                callback(state)
                bar.update(upto - done)
                bar.set_postfix(loss=f"{loss:.2f}", refresh=False)
                done = upto

            for i, (xb, yb) in enumerate(batches):
                with torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext():
                    out = step_model(xb, yb) if conditional else step_model(xb)
                if use_bf16:
                    out = _float_output(out)
                terms = elbo_terms(out, xb, **loss_kwargs)
                means = torch.stack((terms.loss, terms.reconstruction, terms.kl)).mean(dim=1)
                optimizer.zero_grad(set_to_none=True)
                means[0].backward()
                optimizer.step()
                step_means[i] = means.detach()
                sizes.append(xb.shape[0])
                if (i + 1) % sync_every == 0 or i + 1 == n_batches:
                    read_back(i + 1)

            rng_state = get_rng_state(device)  # where the next epoch's random streams start
            seen = sum(sizes)
            record = {"epoch": epoch, "train_loss": totals[0] / seen,
                      "train_reconstruction": totals[1] / seen, "train_kl": totals[2] / seen,
                      "test_loss": None, "test_reconstruction": None, "test_kl": None}
            if test_x is not None:
                with preserved_rng(device):
                    test = evaluate_elbo(model, test_x, y=test_y, binarize=binarize, **loss_kwargs)
                record.update(test_loss=test["loss"], test_reconstruction=test["reconstruction"],
                              test_kl=test["kl"])
            record["seconds"] = time.perf_counter() - started
            history.epochs.append(record)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model=model, optimizer=optimizer, config=full_config,
                                history=history, epoch=epoch, rng_state=rng_state)
                saved_epoch = epoch
            postfix = {"loss": f"{record['train_loss']:.2f}"}
            if record["test_loss"] is not None:
                postfix["test"] = f"{record['test_loss']:.2f}"
            bar.set_postfix(postfix)
            if on_epoch_end:
                state = TrainState(model, history, epoch, len(history.iteration_loss),
                                   record["train_loss"], epochs, n_batches, device)
                with preserved_rng(device):
                    for callback in on_epoch_end:
                        callback(state)
    except KeyboardInterrupt:
        bar.close()
        if checkpoint is None:
            print(f"\nTraining interrupted in epoch {epoch}; no checkpoint was written (pass "
                  f"checkpoint=PATH to fit to be able to resume). The model keeps its current weights.",
                  file=sys.stderr)
        else:
            print(f"\nTraining interrupted in epoch {epoch}. {checkpoint} holds epoch {saved_epoch}, "
                  f"the last completed one. Continue with the same call and resume=True "
                  f"(fit(..., checkpoint=..., resume=True), train_recipe(..., resume=True) or "
                  f"`vae-course train ... --resume`).", file=sys.stderr)
        raise
    finally:
        settings.close()
        bar.close()
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
    model.eval()
    return history


def _check_compilable(device: torch.device, mode: bool | str) -> None:
    """A clear error where torch.compile's Inductor backend cannot generate code for ``device``."""
    if device.type == "cpu":
        return
    if device.type == "cuda":
        from torch.utils._triton import has_triton
        if has_triton():
            return
        why = "Inductor needs Triton for CUDA and it is not installed (pip install triton)"
    else:
        why = f"Inductor does not generate code for {device.type} in the torch versions the course supports"
    raise ValueError(f"compile={mode!r} on {device}: {why}; train with compile=False "
                     f"(the default) - it computes the same model")


def _check_resumable(saved: dict, current: dict, path: Path) -> None:
    """Refuse a checkpoint of another model; warn when settings that change the numbers differ."""
    if saved.get("model") != current["model"]:
        raise ValueError(f"cannot resume from {path}: it holds model {saved.get('model')}, but this "
                         f"model is {current['model']}; use resume=False or another checkpoint path")
    before, now = saved.get("training", {}), current["training"]
    changed = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in TRAJECTORY_KEYS if before.get(k) != now.get(k)]
    if changed:
        print(f"resuming {path} with changed settings ({'; '.join(changed)}); the result will "
              f"differ from an uninterrupted run", file=sys.stderr)


# --------------------------------------------------------------------------- recipes

def train_recipe(recipe_or_name: Any, dataset: str | None = None, epochs: int | None = None,
                 subset: int | None = None, device: str | torch.device = "auto",
                 out: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
                 callbacks: Sequence[Any] = (), **overrides: Any) -> tuple[nn.Module, History]:
    """Train a named source system (``vae_course.recipes``) on a dataset; return ``(model, history)``.

    ``epochs`` and ``subset`` (first N train and test images) shorten a run; ``out=FOLDER``
    writes ``FOLDER/checkpoint.pt`` (and ``resume=True`` continues it).  ``overrides`` change
    the recipe: ``lr``, ``batch_size``, ``beta``, ``reconstruction``, ``kl``, ``sigma``,
    ``binarize``, ``drop_last``, ``model_kwargs`` (merged into the recipe's), and the fit
    arguments ``seed``, ``bf16``, ``compile``, ``channels_last``.
    """
    from . import data
    from .recipes import get_recipe

    recipe = get_recipe(recipe_or_name)
    unknown = sorted(set(overrides) - set(RECIPE_OVERRIDES) - set(FIT_OVERRIDES))
    if unknown:
        raise TypeError(f"train_recipe: unknown override(s) {', '.join(unknown)}; valid ones: "
                        f"{', '.join(RECIPE_OVERRIDES + FIT_OVERRIDES)}")
    settings = {name: getattr(recipe, name) for name in RECIPE_OVERRIDES}
    settings.update({k: v for k, v in overrides.items() if k in RECIPE_OVERRIDES})
    settings["model_kwargs"] = {**dict(recipe.model_kwargs), **dict(overrides.get("model_kwargs") or {})}
    fit_extra = {k: v for k, v in overrides.items() if k in FIT_OVERRIDES}

    name = data.dataset_name(dataset)
    dev = pick_device(device)
    train_x, train_y = data.load_tensors(name, "train", device=dev, subset=subset)
    test_x, test_y = data.load_tensors(name, "test", device=dev, subset=subset)
    seed_everything(fit_extra.get("seed", 0))  # the initial weights depend on the seed too
    model = models.build_model(recipe.arch, **settings.pop("model_kwargs"))
    checkpoint = None
    if out is not None:
        checkpoint = Path(out) / "checkpoint.pt"
    history = fit(model, train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                  epochs=recipe.epochs if epochs is None else epochs, device=dev,
                  callbacks=callbacks, checkpoint=checkpoint, resume=resume, progress=progress,
                  config={"recipe": recipe.name, "dataset": name, "subset": subset},
                  **settings, **fit_extra)
    return model, history
