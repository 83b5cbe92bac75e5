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
  warning says so; ``vae_course.resume``).  How numbers from different machines compare:
  ``vae_course.tolerances``.
- Test evaluation and callbacks run with the random state saved and restored around them,
  so looking at a model (or not) never changes how it trains.
- Checkpoints hold only tensors and plain Python values; they load with
  ``torch.load(path, weights_only=True)``, which cannot run code from a file you downloaded.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from . import models
from .checkpoints import run_lock
from .conditional import check_labels
from .data import Batches
from .devices import (COMPILE_MODES, bf16_supported, check_compilable, deterministic_algorithms,
                      has_convolutions, pick_device)
from .history import History, RunRecorder, check_callbacks
from .losses import check_free_bits, elbo_terms
from .resume import start_or_resume
from .rng import get_rng_state, seed_everything
from .schedules import check_lr_schedule, make_lr_scheduler, warmup_beta

SYNC_EVERY = 50  # on a GPU, read losses back (one sync) every this many steps

# train_recipe: overrides that change recipe fields, and fit arguments recipes do not carry.
RECIPE_OVERRIDES = ("model_kwargs", "reconstruction", "kl", "beta", "sigma", "lr", "batch_size",
                    "binarize", "drop_last", "shuffle")
FIT_OVERRIDES = ("seed", "bf16", "torch_compile", "channels_last", "deterministic",
                 "kl_warmup_epochs", "kl_warmup_steps", "free_bits", "lr_schedule")


# --------------------------------------------------------------------------- one epoch

def make_optimizer(params: Iterable[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fastest update rule that is exact: one fused kernel on CUDA, else foreach.

    (PyTorch also has a fused CPU Adam; it is faster but rounds differently from the reference
    implementation, see the course's notes, so the CPU uses foreach.)
    """
    if device.type == "cuda":
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor | None], Any], *,
                    report: Callable[[list[list[float]]], None] | None = None,
                    report_every: int = 1, scheduler=None) -> tuple[float, float, float]:
    """One pass over ``batches``: the body of MATLAB's training loop (chapter 6).

    For each mini-batch: ``loss_fn(xb, yb)`` gives the ELBO terms per image, their batch
    means are the loss, then backward and one optimizer step.  The batch means stay on the
    device; every ``report_every`` steps (and at the end) they are copied to the host at once
    and handed to ``report(rows)``, rows being ``[loss, reconstruction, kl]`` per step
    - one wait for a GPU instead of one per step.  ``scheduler`` (a ``torch.optim.lr_scheduler``)
    steps after every optimizer step.  Returns the epoch's mean loss, reconstruction and KL
    per image.
    """
    model.train()
    step_means, sizes, reported = [], [], 0
    for xb, yb in batches:
        terms = loss_fn(xb, yb)
        means = torch.stack((terms.loss, terms.reconstruction, terms.kl)).mean(dim=1)
        optimizer.zero_grad(set_to_none=True)
        means[0].backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step_means.append(means.detach())
        sizes.append(len(xb))
        if report is not None and len(sizes) % report_every == 0:
            report(torch.stack(step_means[reported:]).tolist())
            reported = len(sizes)
    if not sizes:
        raise ValueError("train_one_epoch: no mini-batches")
    if report is not None and reported < len(sizes):
        report(torch.stack(step_means[reported:]).tolist())
    # The epoch's means weight each step by its batch size, summed in float64 on the CPU.
    weights = torch.tensor(sizes, dtype=torch.float64)
    totals = (torch.stack(step_means).cpu().double() * weights[:, None]).sum(dim=0) / weights.sum()
    loss, reconstruction, kl = totals.tolist()
    return loss, reconstruction, kl


def make_loss_fn(model: nn.Module, *, reconstruction: str, kl: str, beta: float, sigma: float | None,
                 bf16: bool = False, kl_warmup_steps: int = 0, free_bits: float = 0.0,
                 start_step: int = 0) -> Callable:
    """``loss_fn(xb, yb)`` for :func:`train_one_epoch`: the model's ELBO terms on a batch.

    ``model`` may be a ``torch.compile`` wrapper; with ``bf16`` the forward pass runs under
    bfloat16 autocast and the terms are computed in float32.  Each call is one optimizer
    step: with ``kl_warmup_steps`` the KL weight is :func:`warmup_beta` of the step count,
    which starts at ``start_step`` (a resumed run continues its schedule).  ``free_bits``:
    see :func:`vae_course.losses.free_bits_kl`.
    """
    conditional = bool(getattr(model, "conditional", False))
    device_type = next(model.parameters()).device.type
    step = start_step

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor | None):
        nonlocal step
        with torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            out = model(xb, yb) if conditional else model(xb)
        if bf16:
            out = type(out)(*(t.float() for t in out))
        weight = warmup_beta(step, beta, kl_warmup_steps)
        step += 1
        return elbo_terms(out, xb, reconstruction=reconstruction, kl=kl, beta=weight, sigma=sigma,
                          free_bits=free_bits)
    return loss_fn


# --------------------------------------------------------------------------- fit

def fit(model: nn.Module, train_x: torch.Tensor, *, train_y: torch.Tensor | None = None,
        test_x: torch.Tensor | None = None, test_y: torch.Tensor | None = None,
        epochs: int, batch_size: int, lr: float, reconstruction: str, kl: str, beta: float,
        sigma: float | None = None, binarize: str, drop_last: bool, shuffle: bool = True,
        device: str | torch.device = "auto",
        seed: int = 0, bf16: bool = False, torch_compile: bool | str = False,
        channels_last: bool | None = None, deterministic: bool = False, callbacks: Sequence[Any] = (),
        checkpoint: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
        config: dict | None = None, kl_warmup_epochs: int = 0, kl_warmup_steps: int = 0,
        free_bits: float = 0.0, lr_schedule: str = "constant") -> History:
    """Train ``model`` in place with Adam on the negative ELBO; return the :class:`History`.

    ``reconstruction``, ``kl``, ``beta``, ``sigma`` choose the loss (``vae_course.losses.elbo_terms``);
    ``binarize`` is ``"none"``, ``"static"`` or ``"dynamic"`` (``vae_course.data.Batches``), and the
    test set is binarized the same way; ``shuffle=False`` takes the batches in the data's order
    every epoch, as MATLAB R2019b does.  With ``checkpoint=PATH`` a checkpoint is written before
    the first epoch and after every epoch; ``resume=True`` continues from it (if it exists) up
    to ``epochs`` in total.  ``config`` adds entries such as ``{"recipe": ..., "dataset": ...}``
    to the configuration stored in the checkpoint.

    Options that change the numbers only by float rounding: ``channels_last`` (default: on for
    convolutional models on the CPU, where oneDNN prefers that layout; the model is handed
    back in the usual one), ``bf16=True`` (bfloat16 autocast for the forward pass on the CPU
    and on GPUs that have it; weights, losses and Adam stay float32), ``torch_compile=True`` or
    a ``torch.compile`` mode such as ``"reduce-overhead"`` (CUDA graphs).  ``deterministic=True``
    makes a GPU run repeat bit for bit (the CPU already does).  ``benchmarks/`` measures them.

    Remedies for posterior collapse (chapter 10), both off by default: ``kl_warmup_epochs``
    or ``kl_warmup_steps`` ramp the KL weight linearly from 0 to ``beta`` (:func:`warmup_beta`);
    ``free_bits`` is a floor in nats on each latent dimension's batch-mean KL
    (:func:`vae_course.losses.free_bits_kl`).  Both change only the training loss: the
    history's test loss is the recipe's own (``beta``, no floor).

    ``lr_schedule="one-cycle"`` makes ``lr`` the peak of a one-cycle schedule over the run's
    ``epochs`` (:func:`make_lr_scheduler`; the ``course-fast`` recipe); the default keeps
    ``lr`` constant, as every source does.
    """
    device = pick_device(device)
    callbacks = check_callbacks(callbacks)
    use_bf16 = _check_fit_arguments(model, train_x, train_y, test_x, test_y, epochs, device, bf16,
                                    torch_compile, resume, checkpoint)
    _check_remedies(kl_warmup_epochs, kl_warmup_steps, free_bits)
    check_lr_schedule(lr_schedule)
    if channels_last is None:
        channels_last = device.type == "cpu" and has_convolutions(model)
    full_config = _run_config(model, config, epochs=epochs, batch_size=int(batch_size), lr=float(lr),
                              reconstruction=reconstruction, kl=kl, beta=float(beta),
                              sigma=None if sigma is None else float(sigma), binarize=binarize,
                              drop_last=bool(drop_last), shuffle=bool(shuffle), device=str(device),
                              seed=int(seed),
                              bf16=bool(bf16), compile=torch_compile, channels_last=bool(channels_last),
                              deterministic=bool(deterministic), kl_warmup_epochs=int(kl_warmup_epochs),
                              kl_warmup_steps=int(kl_warmup_steps), free_bits=float(free_bits),
                              lr_schedule=lr_schedule)
    seed_everything(seed)
    model.to(device)
    if channels_last:  # before the optimizer is built, so its state takes the same layout
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), lr, device)
    conditional = bool(getattr(model, "conditional", False))
    batches = Batches(train_x.to(device), train_y.to(device) if conditional else None,  # checks first,
                      batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,   # before any file
                      binarize=binarize, seed=seed)                                   # is written
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    with run_lock(checkpoint.parent) if checkpoint is not None else contextlib.nullcontext():
        history, start_epoch = start_or_resume(model, optimizer, full_config, checkpoint, resume, device)
        _train_epochs(model, optimizer, batches, full_config, history, start_epoch, callbacks, checkpoint,
                      progress, use_bf16, test_x, test_y)
    model.eval()
    return history


def _train_epochs(model, optimizer, batches, config, history, start_epoch, callbacks, checkpoint,
                  progress, use_bf16, test_x, test_y) -> None:
    """The epochs of :func:`fit`: train, then test, record, checkpoint and call back."""
    training = config["training"]
    device, epochs = torch.device(training["device"]), training["epochs"]
    conditional = bool(getattr(model, "conditional", False))
    torch_compile, channels_last = training["compile"], training["channels_last"]
    step_model = torch.compile(model, mode=None if torch_compile is True else torch_compile) \
        if torch_compile else model
    loss_kwargs = {k: training[k] for k in ("reconstruction", "kl", "beta", "sigma")}
    warmup_steps = training["kl_warmup_steps"] or training["kl_warmup_epochs"] * len(batches)
    loss_fn = make_loss_fn(step_model, bf16=use_bf16, kl_warmup_steps=warmup_steps,
                           free_bits=training["free_bits"], start_step=start_epoch * len(batches),
                           **loss_kwargs)
    scheduler = make_lr_scheduler(optimizer, training["lr_schedule"], epochs * len(batches),
                                  start_step=start_epoch * len(batches))
    run = RunRecorder(model, history, callbacks, epochs, len(batches), device, checkpoint, start_epoch,
                      training["lr"], progress)
    test = None if test_x is None else (test_x.to(device), test_y.to(device) if conditional else None)
    try:
        with deterministic_algorithms(training["deterministic"]):
            for epoch in range(start_epoch + 1, epochs + 1):
                run.start_epoch(epoch)
                batches.set_epoch(epoch)
                means = train_one_epoch(model, optimizer, batches, loss_fn, report=run.record_steps,
                                        report_every=1 if device.type == "cpu" else SYNC_EVERY,
                                        scheduler=scheduler)
                run.end_epoch(means, get_rng_state(device), test, training["binarize"], loss_kwargs,
                              optimizer, config)
    except KeyboardInterrupt:
        run.interrupted()
        raise
    finally:
        run.close()
        if channels_last:
            model.to(memory_format=torch.contiguous_format)


def _check_fit_arguments(model, train_x, train_y, test_x, test_y, epochs, device, bf16, torch_compile,
                         resume, checkpoint) -> bool:
    """Refuse what cannot work with a clear message; return whether bf16 autocast is used."""
    conditional = bool(getattr(model, "conditional", False))
    if not isinstance(train_x, torch.Tensor):
        raise TypeError(f"train_x must be a torch.Tensor of images (N, 1, 28, 28); got {type(train_x).__name__}")
    if conditional and (train_y is None or (test_x is not None and test_y is None)):
        raise ValueError(f"{type(model).__name__} is conditional: pass the labels as train_y= "
                         f"(and test_y= with test_x=)")
    if conditional:  # once, here, so the forward pass never has to ask the GPU about labels
        check_labels(train_y, model.num_classes, "train_y")
        if test_y is not None:
            check_labels(test_y, model.num_classes, "test_y")
    if train_x.numel() and not (train_x.is_floating_point() and bool(torch.isfinite(train_x).all())
                                and 0 <= float(train_x.min()) and float(train_x.max()) <= 1):
        raise ValueError("train_x must hold finite pixel values in [0, 1] (float); images stored as "
                         "0-255 bytes need x.float() / 255, as vae_course.data.load_tensors does")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
    if not (isinstance(torch_compile, bool) or torch_compile in COMPILE_MODES):
        raise ValueError(f"torch_compile must be True, False or one of torch.compile's modes "
                         f"{', '.join(COMPILE_MODES)}; got {torch_compile!r}")
    if torch_compile:
        check_compilable(device, torch_compile)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH (the file to continue from)")
    use_bf16 = bool(bf16) and bf16_supported(device)
    if bf16 and not use_bf16:
        print(f"bf16=True has no effect on {device} (no bfloat16 support, e.g. a T4 or a Mac): "
              f"training in float32", file=sys.stderr)
    return use_bf16


def _check_remedies(kl_warmup_epochs, kl_warmup_steps, free_bits) -> None:
    """Refuse warm-up lengths that are not whole numbers >= 0, or both kinds at once."""
    for name, value in (("kl_warmup_epochs", kl_warmup_epochs), ("kl_warmup_steps", kl_warmup_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0 (0: no warm-up), got {value!r}")
    if kl_warmup_epochs and kl_warmup_steps:
        raise ValueError(f"give the KL warm-up in epochs or in steps, not both (got "
                         f"kl_warmup_epochs={kl_warmup_epochs}, kl_warmup_steps={kl_warmup_steps})")
    check_free_bits(free_bits, "fit")


def _run_config(model: nn.Module, extra: dict | None, **training: Any) -> dict:
    """The configuration a checkpoint stores: model, training settings, recipe and dataset."""
    config = {"model": dict(model.config), "training": training, "recipe": None, "dataset": None}
    config.update(extra or {})
    return config


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
    arguments ``seed``, ``bf16``, ``compile``, ``channels_last``, ``kl_warmup_epochs``,
    ``kl_warmup_steps``, ``free_bits``, ``lr_schedule`` (default: the recipe's).
    """
    from . import data
    from .datasets import dataset_name
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
    fit_extra.setdefault("lr_schedule", recipe.lr_schedule)  # a fit option that a recipe may carry

    name = dataset_name(dataset)
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
