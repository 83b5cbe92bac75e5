"""Checkpoints: write a training run's state atomically, read it back safely, rebuild its model.

A checkpoint holds only tensors and plain Python values, so it loads with
``torch.load(path, weights_only=True)``, which cannot run code from a file you downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import models
from .devices import pick_device

CHECKPOINT_FORMAT = "vae-course-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable vae-course checkpoint (corrupt, truncated, or something else)."""


def save_checkpoint(path: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    config: dict | None = None, history: Any = None, epoch: int = 0,
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
        "history": history.to_dict() if history is not None else {"iteration_loss": [], "epochs": []},
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
