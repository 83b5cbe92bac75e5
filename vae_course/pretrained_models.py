"""The trained weights that ship with the package, so chapters 7-9 need no retraining.

``vae_course.pretrained("matlab-2022", "mnist")`` returns the model the book's figures were made with.
The files live in ``vae_course/weights/``: one float32 state dict per model, loaded with
``torch.load(weights_only=True)`` (plain tensors, no pickled code), and ``manifest.json``,
which records for each file its SHA-256, the model's configuration and exactly how it was
trained (recipe settings, epochs, seed, hardware, wall time, final losses).  A file whose
checksum does not match is refused with its name and the way to restore it.

``tools/export_pretrained.py`` writes them from the runs ``tools/train_book_models.py``
trains; the README says how to regenerate them.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = "manifest.json"


class PretrainedError(ValueError):
    """No shipped weights for a request, or a shipped file that fails its checksum."""


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()  # each file is about 1 MB


def manifest(folder: Path | None = None) -> dict:
    """The manifest: ``{"models": {"RECIPE/DATASET": {...}}}`` (empty when none ship)."""
    path = Path(folder or WEIGHTS_DIR) / MANIFEST
    if not path.exists():
        return {"models": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PretrainedError(f"{path} is not valid JSON ({err}); reinstall vae-course or run "
                              f"tools/export_pretrained.py to rewrite it") from None


def available(folder: Path | None = None) -> list[str]:
    """``"recipe/dataset"`` for every shipped model."""
    return sorted(manifest(folder)["models"])


def _entry(recipe: str, dataset: str, folder: Path) -> dict:
    from .datasets import dataset_name
    entry = manifest(folder)["models"].get(f"{recipe}/{dataset_name(dataset)}")
    if entry is None:
        raise PretrainedError(f"no pretrained weights for recipe {recipe!r} on {dataset_name(dataset)}; "
                              f"shipped: {', '.join(available(folder)) or 'none'}. Train one with "
                              f"vae_course.notebook.trained({recipe!r}, dataset={dataset_name(dataset)!r})")
    return entry


def _verified(folder: Path, name: str, expected: str) -> Path:
    """The shipped file ``name``, after checking it exists and matches its SHA-256."""
    path = folder / name
    if not path.exists():
        raise PretrainedError(f"{path} is missing (listed in {folder / MANIFEST}); reinstall vae-course")
    actual = sha256(path)
    if actual != expected:
        raise PretrainedError(f"{path} does not match its checksum in {folder / MANIFEST} (SHA-256 "
                              f"{actual[:12]}..., expected {expected[:12]}...): the file is damaged "
                              f"or was replaced; reinstall vae-course or re-export it with "
                              f"tools/export_pretrained.py")
    return path


def shipped_history(recipe: str, dataset: str = "mnist", folder: Path | None = None):
    """The training history of a shipped model: every epoch's record and every mini-batch's
    loss (6 significant digits), as ``vae_course.history.History``."""
    folder = Path(folder or WEIGHTS_DIR)
    return history_from(_entry(recipe, dataset, folder), folder)


def history_from(entry: dict, folder: Path | None = None):
    """:func:`shipped_history` of the manifest entry ``entry`` (its losses file checked)."""
    from .history import History

    folder = Path(folder or WEIGHTS_DIR)
    iteration_loss = []
    if "losses_file" in entry:
        path = _verified(folder, entry["losses_file"], entry["losses_sha256"])
        raw = path.read_bytes()
        if path.suffix == ".gz":  # gzip keeps every mini-batch's loss in a third of the space
            raw = gzip.decompress(raw)
        iteration_loss = json.loads(raw.decode("utf-8"))["iteration_loss"]
    return History(iteration_loss=iteration_loss, epochs=[dict(e) for e in entry["history"]])


def shipped_frames(recipe: str, dataset: str = "mnist", folder: Path | None = None):
    """The tiles a shipped run saved after each epoch (uint8 array ``(epochs, H, W)``): for
    tf-cvae, 16 fixed test images reconstructed after every epoch, the TensorFlow tutorial's
    GIF. Only runs trained with such a callback have them."""
    import numpy as np
    from PIL import Image

    folder = Path(folder or WEIGHTS_DIR)
    entry = _entry(recipe, dataset, folder)
    if "frames_file" not in entry:
        raise PretrainedError(f"the shipped {recipe}/{dataset} run saved no per-epoch frames")
    strip = np.asarray(Image.open(_verified(folder, entry["frames_file"], entry["frames_sha256"])))
    return strip.reshape(entry["frames"], strip.shape[0] // entry["frames"], strip.shape[1])


def pretrained(recipe: str, dataset: str = "mnist", device: str | torch.device = "cpu",
               folder: Path | None = None) -> nn.Module:
    """The shipped model trained with ``recipe`` on ``dataset``, in eval mode on ``device``."""
    folder = Path(folder or WEIGHTS_DIR)
    return model_from(_entry(recipe, dataset, folder), device, folder)


def model_from(entry: dict, device: str | torch.device = "cpu", folder: Path | None = None) -> nn.Module:
    """:func:`pretrained` of the manifest entry ``entry`` (its weights file checked), so that
    ``notebook.trained``, which has the entry already, does not read the manifest again."""
    from .models import build_model

    folder = Path(folder or WEIGHTS_DIR)
    path = _verified(folder, entry["file"], entry["sha256"])
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(**entry["model"])  # the config holds "arch", as in a checkpoint
    model.load_state_dict(state)
    return model.to(device).eval()
