"""Checkpoints: write a training run's state atomically, read it back safely, rebuild its model.

A checkpoint holds only tensors and plain Python values, so it loads with
``torch.load(path, weights_only=True)``, which cannot run code from a file you downloaded.
Everything in it is checked before it is used or printed: its layout and types, the format
version, and a SHA-256 of every tensor (torch's zip reader does not notice flipped bits).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import reprlib
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from . import models
from .devices import pick_device

CHECKPOINT_FORMAT = "vae-course-checkpoint"
CHECKPOINT_VERSION = 2          # 2 adds "checksum"; version 1 files (no checksum) still load
READABLE_VERSIONS = (1, 2)
_SUMMARY = reprlib.Repr()       # bounded printing of values read from a file
_SUMMARY.maxlevel, _SUMMARY.maxlist, _SUMMARY.maxdict, _SUMMARY.maxstring = 2, 4, 4, 40
_SUMMARY.maxother = 40


class CheckpointError(ValueError):
    """A file that is not a usable vae-course checkpoint (corrupt, truncated, foreign, tampered)."""


def summary(value: Any) -> str:
    """A short, bounded description of a value read from a file (safe for any nesting)."""
    return _SUMMARY.repr(value)


# --------------------------------------------------------------------------- writing

def tensor_checksum(*groups: dict) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every tensor in ``groups`` (nested dicts/lists)."""
    digest = hashlib.sha256()

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().reshape(-1).contiguous()
            digest.update(f"{prefix}|{t.dtype}|{tuple(value.shape)}|".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(f"{prefix}/{key}", value[key])
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}/{i}", item)
    for i, group in enumerate(groups):
        walk(str(i), group)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    config: dict | None = None, history: Any = None, epoch: int = 0,
                    rng_state: dict | None = None) -> Path:
    """Write a checkpoint atomically: to a fresh temporary file beside ``path``, flushed to
    disk, then renamed over ``path``.

    The temporary file is created exclusively under an unpredictable name (``mkstemp``), so a
    symlink planted in the folder is never followed; a crash, Ctrl-C or a full disk leaves
    the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = {"model": dict(model.config), "training": {}, "recipe": None, "dataset": None}
    weights = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    optimizer_state = optimizer.state_dict() if optimizer is not None else None
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "epoch": int(epoch),
        "model": weights,
        "optimizer": optimizer_state,
        "config": config,
        "history": history.to_dict() if history is not None else {"iteration_loss": [], "epochs": []},
        "rng": rng_state,
        "torch_version": str(torch.__version__),
        "checksum": tensor_checksum(weights, optimizer_state or {}),
    }
    _write_atomically(path, payload)
    return path


def _write_atomically(path: Path, payload: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from its group
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if _disk_full(error):
            raise OSError(errno.ENOSPC, f"disk full while writing checkpoint {path}; the previous "
                                        f"checkpoint there is intact. Free some space and resume") from error
        raise
    _fsync_folder(path.parent)


def _disk_full(error: BaseException) -> bool:
    # torch reports a full disk as RuntimeError("... unexpected pos ...") from its zip writer.
    return (isinstance(error, OSError) and error.errno == errno.ENOSPC) or \
        (isinstance(error, RuntimeError) and "unexpected pos" in str(error))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (the folder's entry), where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_HELD_LOCKS: dict[str, int] = {}


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, wait: bool = False) -> Iterator[None]:
    """Hold an advisory lock on a run folder, so two trainings never write the same checkpoint.

    A second process asking for the same folder gets a clear error at once, or with ``wait``
    waits its turn (two notebooks asking for the same cached model: one trains, one waits).
    The same process may take it again (``vae-course train`` takes it, then ``fit`` does).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if key in _HELD_LOCKS:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; runs are not protected from each other
        yield
        return
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise CheckpointError(f"another training run is writing to {folder}; wait for it to finish, "
                              f"or choose another output folder") from None
    _HELD_LOCKS[key] = fd
    try:
        yield
    finally:
        del _HELD_LOCKS[key]
        os.close(fd)  # closing releases the lock


# --------------------------------------------------------------------------- reading

def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``, check every field and the checksum.

    A folder holding ``checkpoint.pt`` (what ``train_recipe(out=...)`` writes) works too.
    """
    path = _checkpoint_file(Path(path))
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for corrupt, truncated or foreign files
        if "weights only" in str(error).lower():
            why = ("it holds Python objects other than tensors and plain values, which "
                   "torch.load(weights_only=True) refuses to run; it was not written by vae_course.train")
        else:
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            why = (f"{type(error).__name__}: {first_line}; the file is corrupt or truncated "
                   f"(an interrupted copy?) or is not a torch file")
        raise CheckpointError(f"cannot read checkpoint {path}: {why}. Retrain, or restore the file "
                              f"from a backup") from error
    validate_checkpoint(ckpt, path)
    return ckpt


def _checkpoint_file(path: Path) -> Path:
    if path.is_dir() and (path / "checkpoint.pt").is_file():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path, or train first "
                                f"(train_recipe(..., out=FOLDER) or `vae-course train --out FOLDER`)")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; pass the checkpoint file (e.g. {path / 'checkpoint.pt'})")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if len(head) < 4 or (head[:2] != b"PK" and head[:1] != b"\x80"):  # zip (torch >= 1.6) or pickle
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (it starts with {head!r}, not a "
                              f"zip or pickle signature); pass the checkpoint.pt written by "
                              f"`vae-course train` or vae_course.train.fit")
    return path


def validate_checkpoint(ckpt: Any, path: str | os.PathLike = "checkpoint") -> None:
    """Check the layout and types of everything a checkpoint holds, before anything uses it."""
    def fail(what: str) -> None:
        raise CheckpointError(f"checkpoint {path} {what}; it is damaged or was not written by "
                              f"vae-course. Retrain, or restore it from a backup")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is a torch file but not a vae-course checkpoint (found "
                              f"{summary(found)}); load it with torch.load, or pass a checkpoint "
                              f"written by vae_course.train")
    version = ckpt.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise CheckpointError(f"checkpoint {path} has format version {summary(version)}; this "
                              f"vae-course reads versions {READABLE_VERSIONS}: upgrade vae-course "
                              f"(pip install -U vae-course) or retrain")
    epoch = ckpt.get("epoch")
    if type(epoch) is not int or epoch < 0:
        fail(f"has epoch {summary(epoch)}, not a whole number >= 0")
    _check_tensor_dict(ckpt.get("model"), "model", fail)
    optimizer = ckpt.get("optimizer")
    if optimizer is not None and not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
                                      and isinstance(optimizer.get("param_groups"), list)):
        fail(f"has an optimizer state that is not Adam's ({summary(optimizer)})")
    _check_config(ckpt.get("config"), fail)
    _check_history(ckpt.get("history"), fail)
    if ckpt.get("rng") is not None and not isinstance(ckpt["rng"], dict):
        fail(f"has a random state of type {type(ckpt['rng']).__name__}")
    if version >= 2:
        saved = ckpt.get("checksum")
        if not isinstance(saved, str) or saved != tensor_checksum(ckpt["model"], ckpt.get("optimizer") or {}):
            fail("fails its checksum: its weights or optimizer state changed after it was written "
                 "(a damaged disk or copy)")


def _check_tensor_dict(value: Any, name: str, fail) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in value.items()):
        fail(f"has no {name} weights (a dict of named tensors), found {summary(value)}")


def _check_config(config: Any, fail) -> None:
    if not isinstance(config, dict):
        fail(f"has config {summary(config)}, not a dict")
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("arch"), str):
        fail(f"does not say which model it holds (config['model'] = {summary(model)})")
    for key, value in model.items():
        plain = value is None or type(value) in (bool, int, float, str) or (
            isinstance(value, list) and len(value) <= 64 and all(type(v) is int for v in value))
        if not isinstance(key, str) or not plain:
            fail(f"has model setting {summary(key)} = {summary(value)}, not a plain value")
    if not isinstance(config.get("training", {}), dict):
        fail(f"has training settings {summary(config.get('training'))}, not a dict")
    for key in ("recipe", "dataset"):
        if config.get(key) is not None and not isinstance(config[key], str):
            fail(f"has {key} {summary(config[key])}, not a name")


def _check_history(history: Any, fail) -> None:
    if not isinstance(history, dict):
        fail(f"has history {summary(history)}, not a dict")
    losses, epochs = history.get("iteration_loss", []), history.get("epochs", [])
    if not isinstance(losses, list) or not all(type(v) in (int, float) for v in losses):
        fail("has an iteration-loss history that is not a list of numbers")
    if not isinstance(epochs, list) or not all(
            isinstance(r, dict) and all(isinstance(k, str) and (v is None or type(v) in (int, float))
                                        for k, v in r.items()) for r in epochs):
        fail("has epoch records that are not dicts of numbers")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint was trained as, load its weights, put it in eval mode.

    Returns ``(model, checkpoint)``; ``checkpoint["config"]`` and ``["history"]`` say how it
    was trained and how it went.
    """
    ckpt = load_checkpoint(path)
    model_config = ckpt["config"]["model"]
    try:
        model = models.build_model(**model_config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} describes a model this vae-course cannot build "
                              f"({summary(model_config)}): {str(error)[:200]}") from None
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as error:
        first = str(error).splitlines()[0][:200]
        raise CheckpointError(f"checkpoint {path}: its weights do not fit the model its config "
                              f"describes ({summary(model_config)}): {first}") from None
    return model.to(pick_device(device)).eval(), ckpt
