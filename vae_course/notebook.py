"""Small helpers the chapters share: quick mode, a cache of trained models, run facts.

- Quick mode (``VAE_COURSE_QUICK=1``, set by CI) shrinks epochs and training subsets so
  every notebook executes in seconds under nbval; the committed outputs come from real runs.
- :func:`trained` trains a recipe once and caches the checkpoint, keyed by recipe and
  settings, so later chapters reuse the models earlier chapters trained.
- :func:`describe_run` prints what a notebook ran on (dataset, epochs, hardware), because
  every result in the book should say where it came from.
- :func:`repo_file` finds a file of the repository (benchmark results) from a notebook.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

QUICK_ENV = "VAE_COURSE_QUICK"


def quick_mode() -> bool:
    """True when ``VAE_COURSE_QUICK=1``: CI's fast mode, not meant for real results."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")


def real_or_quick(full, quick):
    """``full`` normally, ``quick`` in quick mode (CI): ``epochs = real_or_quick(30, 1)``."""
    return quick if quick_mode() else full


def repo_file(path: str, written_by: str = "") -> Path:
    """``path`` (relative to the repository root) found from a notebook: in the current folder
    or the nearest folder above it that has it, since Jupyter runs a notebook in its own
    folder (``notebooks/`` or ``book/``).  ``written_by`` names what writes the file, for
    the error when no folder has it (outside a clone of the repository, e.g. in Colab).
    """
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / path).exists():
            return folder / path
    hint = f"; {written_by} writes it" if written_by else ""
    raise FileNotFoundError(f"{path} not found in {here} or any folder above it: open this notebook "
                            f"in a clone of the vae-course repository{hint}")


def checkpoint_cache_dir() -> Path:
    """Where :func:`trained` keeps checkpoints (``$VAE_COURSE_CHECKPOINTS`` or the user cache)."""
    if os.environ.get("VAE_COURSE_CHECKPOINTS"):
        return Path(os.environ["VAE_COURSE_CHECKPOINTS"]).expanduser()
    from .datasets import cache_dir
    return cache_dir() / "checkpoints"


def run_key(recipe, dataset: str, epochs: int, subset: int | None, seed: int,
            overrides: dict) -> str:
    """A readable, stable folder name for one training configuration.

    The digest covers the recipe's training settings as well as ``overrides``, so a recipe
    corrected later (say a learning rate) never reuses a model trained with the old value.
    """
    from .recipes import get_recipe
    from .train import RECIPE_OVERRIDES
    spec = get_recipe(recipe)
    settings = {"recipe": {k: getattr(spec, k) for k in RECIPE_OVERRIDES}, "overrides": overrides}
    if spec.lr_schedule != "constant":  # only then, so the keys of constant-lr runs stay as they were
        settings["recipe"]["lr_schedule"] = spec.lr_schedule
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
    subset_part = f"-n{subset}" if subset else ""
    quick_part = "-quick" if quick_mode() else ""
    return f"{spec.name}-{dataset}-e{epochs}{subset_part}-s{seed}-{digest}{quick_part}"


def run_dir(recipe, dataset: str, epochs: int | None = None, subset: int | None = None,
            seed: int = 0, overrides: dict | None = None) -> Path:
    """The checkpoint-cache folder of one training configuration (``epochs``: the recipe's by
    default): where :func:`trained` keeps it, and where ``tools/train_book_models.py`` and
    ``tools/export_pretrained.py`` find the book's runs."""
    from .recipes import get_recipe
    epochs = get_recipe(recipe).epochs if epochs is None else epochs
    return checkpoint_cache_dir() / run_key(recipe, dataset, epochs, subset, seed, overrides or {})


def trained(recipe: str, *, dataset: str | None = None, epochs: int | None = None,
            subset: int | None = None, seed: int = 0, device: str = "auto",
            progress: bool = True, callbacks=(), retrain: bool = False, **overrides):
    """Return ``(model, history)`` for a recipe, training it only if no cached run is complete.

    The recipe exactly as written (full length, seed 0, no overrides) comes from the weights
    the package ships (:mod:`vae_course.pretrained_models`), so a laptop need not retrain it;
    ``retrain=True`` or ``VAE_COURSE_RETRAIN=1`` trains it anyway.  Their history comes with
    them (every epoch's record and every mini-batch's loss).
    Quick mode (CI) serves the shipped weights too, since they are real results; anything
    else is trained with ``epochs`` and ``subset`` capped (1 epoch, 2 000 images) under a
    separate cache key, so a quick run never stands in for a real one.
    ``overrides`` (recipe changes such as ``beta=4``) are part of the cache key;
    ``callbacks`` are not (they watch a run without changing it) and only run when training.
    """
    from .datasets import dataset_name
    from .recipes import get_recipe
    from .checkpoints import load_model, run_lock
    from .devices import pick_device
    from .history import History
    from .train import train_recipe

    spec = get_recipe(recipe)
    dataset = dataset_name(dataset)
    epochs = epochs or spec.epochs
    entry = _shipped_entry(spec.name, dataset, epochs, subset, seed, overrides, retrain)
    if entry is not None:  # one read of the manifest; each file is still checked against its SHA-256
        from .pretrained_models import history_from, model_from
        return model_from(entry, device=pick_device(device)), history_from(entry)
    if quick_mode():
        epochs, subset = 1, min(subset or 2000, 2000)
    out = run_dir(spec, dataset, epochs, subset, seed, overrides)
    checkpoint = out / "checkpoint.pt"
    dev = pick_device(device)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out, wait=True):  # two notebooks asking for the same model: one trains, one waits
        if checkpoint.exists():
            model, ckpt = load_model(checkpoint, device=dev)
            history = History.from_dict(ckpt["history"])
            if len(history.epochs) >= epochs:
                return model, history
        return train_recipe(spec, dataset=dataset, epochs=epochs, subset=subset, device=dev, out=out,
                            resume=checkpoint.exists(), seed=seed, progress=progress,
                            callbacks=callbacks, **overrides)


def _shipped_entry(recipe: str, dataset: str, epochs: int, subset, seed: int, overrides: dict,
                   retrain: bool) -> dict | None:
    """The manifest entry of the shipped model when ``trained`` asks for exactly what ships
    (and retraining was not asked for), else None."""
    from .pretrained_models import manifest
    from .recipes import get_recipe

    if retrain or os.environ.get("VAE_COURSE_RETRAIN", "") not in ("", "0"):
        return None
    if overrides or subset is not None or seed != 0 or epochs != get_recipe(recipe).epochs:
        return None
    return manifest()["models"].get(f"{recipe}/{dataset}")


def describe_run(dataset: str | None = None, **settings) -> None:
    """Print dataset, settings and hardware: the provenance of this notebook's results."""
    from .datasets import dataset_name
    from .devices import describe_hardware
    parts = [f"dataset: {dataset_name(dataset)}"]
    parts += [f"{k}: {v}" for k, v in settings.items()]
    parts.append(f"hardware: {describe_hardware()}")
    parts.append(f"torch {torch.__version__}")
    if quick_mode():
        parts.append("QUICK MODE (CI): tiny runs, numbers are not meaningful")
    print("\n".join(parts))


def describe_model(recipe: str, history, dataset: str | None = None, **overrides) -> str:
    """One line on where a model from :func:`trained` came from: epochs, training wall time,
    hardware, and whether it is the shipped weights, so a page states it, never types it.
    Pass the ``overrides`` it was trained with (``beta=4``): they are part of its name."""
    from .datasets import dataset_name
    from .devices import describe_hardware
    from .pretrained_models import manifest
    from .recipes import get_recipe

    dataset = dataset_name(dataset)
    entry = manifest()["models"].get(f"{get_recipe(recipe).name}/{dataset}")
    shipped = entry is not None and history.epochs == entry["history"]
    hardware = entry["hardware"] if shipped else describe_hardware()
    origin = f"shipped weights vae_course/weights/{entry['file']}" if shipped else "trained here"
    minutes = sum(e["seconds"] for e in history.epochs) / 60
    name = recipe + (f" ({', '.join(f'{k}={v}' for k, v in overrides.items())})" if overrides else "")
    line = (f"{name} on {dataset}: {len(history.epochs)} epochs (recipe: "
            f"{get_recipe(recipe).epochs}), {minutes:.1f} min of training on {hardware}; {origin}")
    print(line)
    return line


def glue(name: str, value, display: bool = True):
    """``myst_nb.glue`` when available (so prose can cite computed numbers), else just show it."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy/torch scalars: myst-nb stores a plain number, not "np.float64(...)"
    try:
        from myst_nb import glue as _glue
    except ImportError:  # e.g. Colab: nothing to glue into, so show the value
        if display:
            print(f"{name} = {value}")
        return value
    _glue(name, value, display=display)
    return value
