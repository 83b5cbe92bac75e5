"""Resuming: continue an interrupted run exactly where its last completed epoch ended (chapter 6).

``fit(..., checkpoint=PATH, resume=True)`` calls :func:`start_or_resume`: it loads the model,
Adam's moments and every random generator's state from the checkpoint, so the run continues
with bit-for-bit the numbers of a run that was never interrupted (on the CPU; on a GPU with
``deterministic=True``).  What it guards against:

- another model, recipe, dataset or subset in the checkpoint: refused, since the run would
  be relabelled as something it is not;
- changed settings that alter the numbers (``TRAJECTORY_KEYS``, e.g. a lower learning rate
  after a NaN): allowed, with a warning that the result differs from an uninterrupted run;
- a checkpoint from another device: Adam keeps the update rule chosen for this device
  (:func:`load_optimizer_state`), and the device's random stream cannot continue (a warning).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint, summary
from .history import History
from .rng import get_rng_state, set_rng_state

# Keys of a checkpoint's config["training"] that change the numbers a run produces; resuming
# with different values is allowed (e.g. a lower lr after a NaN) but is no longer exact.
TRAJECTORY_KEYS = ("batch_size", "lr", "reconstruction", "kl", "beta", "sigma", "binarize",
                   "drop_last", "shuffle", "seed", "kl_warmup_epochs", "kl_warmup_steps", "free_bits",
                   "lr_schedule")
# What a checkpoint written before these options existed trained with.
TRAINING_DEFAULTS = {"kl_warmup_epochs": 0, "kl_warmup_steps": 0, "free_bits": 0.0,
                     "lr_schedule": "constant"}


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


def start_or_resume(model, optimizer, config: dict, checkpoint: Path | None, resume: bool,
                    device: torch.device) -> tuple[History, int]:
    """Load the checkpoint to continue from, or write epoch 0 (so even epoch 1 can be resumed)."""
    if resume and checkpoint.exists():
        saved = load_checkpoint(checkpoint)
        require_resumable(saved, checkpoint)
        check_resumable(saved["config"], config, checkpoint)
        model.load_state_dict(saved["model"])
        load_optimizer_state(optimizer, saved["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = config["training"]["lr"]
        set_rng_state(saved["rng"], device)  # warns when saved on another kind of device
        return History.from_dict(saved["history"]), int(saved["epoch"])
    history = History()
    if checkpoint is not None:
        save_checkpoint(checkpoint, model=model, optimizer=optimizer, config=config,
                        history=history, epoch=0, rng_state=get_rng_state(device))
    return history, 0


def require_resumable(ckpt: dict, path: Path) -> None:
    """A checkpoint to continue training from must hold the optimizer and the random state."""
    missing = [name for name in ("optimizer", "rng") if not ckpt.get(name)]
    if missing:
        raise CheckpointError(f"cannot resume from {path}: it holds no {' or '.join(missing)} state "
                              f"(it was saved for inference only); train anew into another folder")


def check_resumable(saved: dict, current: dict, path: Path) -> None:
    """Refuse a checkpoint of another model; warn when settings that change the numbers differ."""
    if saved.get("model") != current["model"]:
        raise ValueError(f"cannot resume from {path}: it holds model {summary(saved.get('model'))}, but "
                         f"this model is {current['model']}; use resume=False or another checkpoint path")
    for key in ("recipe", "dataset", "subset"):  # another run's data would be relabelled as this one
        if key in current and saved.get(key) != current.get(key):
            raise ValueError(f"cannot resume from {path}: it was trained with {key} "
                             f"{summary(saved.get(key))}, not {current.get(key)!r}; resume with the same "
                             f"{key} (--{key} {summary(saved.get(key))}) or train into another folder")
    before, now = saved.get("training", {}), current["training"]
    before = {**TRAINING_DEFAULTS, **before}
    changed = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in TRAJECTORY_KEYS if before.get(k) != now.get(k)]
    if now.get("lr_schedule", "constant") != "constant" and before.get("epochs") != now.get("epochs"):
        changed.append(f"epochs: {before.get('epochs')!r} -> {now.get('epochs')!r} (the lr schedule spans the run)")
    if changed:
        print(f"resuming {path} with changed settings ({'; '.join(changed)}); the result will "
              f"differ from an uninterrupted run", file=sys.stderr)
