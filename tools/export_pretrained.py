"""Write the package's shipped weights (``vae_course/weights/``) from the book's trained runs.

For each recipe and dataset it finds the full-length seed-0 run that
``tools/train_book_models.py`` trained (through ``vae_course.notebook.trained``), saves the
model's state dict as float32 tensors, and records in ``manifest.json`` the file's SHA-256,
the model configuration, the training settings, the hardware and wall time, and the final
losses, so anyone can check what they load and retrain it the same way.

    python tools/export_pretrained.py                       # every run that is complete
    python tools/export_pretrained.py --only course:mnist   # one
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vae_course import notebook
from vae_course.checkpoints import load_checkpoint
from vae_course.pretrained_models import MANIFEST, WEIGHTS_DIR, manifest, sha256
from vae_course.recipes import get_recipe

MODELS = [(recipe, dataset) for dataset in ("mnist", "fashion-mnist")
          for recipe in ("matlab-2022", "matlab-2019", "tf-cvae", "pytorch-mlp", "course")]
LIMIT_BYTES = 10 * 1024 * 1024  # the budget for all shipped weights together


def export(recipe: str, dataset: str, folder: Path, note: str = "") -> dict | None:
    """Save one model's weights; return its manifest entry (None if its run is not complete)."""
    spec = get_recipe(recipe)
    run = notebook.run_dir(spec, dataset)
    path = run / "checkpoint.pt"
    if not path.exists():
        print(f"skip {recipe}/{dataset}: no run at {run}", file=sys.stderr)
        return None
    ckpt = load_checkpoint(path)
    epochs = ckpt["history"]["epochs"]
    if len(epochs) < spec.epochs:
        print(f"skip {recipe}/{dataset}: {len(epochs)} of {spec.epochs} epochs trained", file=sys.stderr)
        return None
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in ckpt["model"].items()}
    name = f"{recipe}-{dataset}.pt"
    torch.save(state, folder / name)
    losses = f"{recipe}-{dataset}.losses.json.gz"  # every mini-batch's loss: the progress plot
    iteration_loss = [float(f"{v:.6g}") for v in ckpt["history"]["iteration_loss"]]
    (folder / losses).write_bytes(losses_file_bytes(iteration_loss))
    frames = export_frames(run / "frames", folder / f"{recipe}-{dataset}.frames.png")
    last = epochs[-1]
    facts = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    return {
        "file": name,
        "sha256": sha256(folder / name),
        "losses_file": losses,
        "losses_sha256": sha256(folder / losses),
        "model": ckpt["config"]["model"],
        "training": ckpt["config"]["training"],
        "recipe": recipe,
        "dataset": dataset,
        "epochs": len(epochs),
        "train_seconds": round(sum(e["seconds"] for e in epochs), 1),
        "hardware": facts.get("hardware", "not recorded"),
        "note": note,  # e.g. that the machine was shared, so the wall time is no benchmark
        "torch": ckpt.get("torch_version"),
        "final": {k: last[k] for k in ("train_loss", "test_loss", "test_reconstruction", "test_kl")},
        "history": epochs,  # per-epoch records: what notebook.trained hands back with the model
        "last_batch_loss": ckpt["history"]["iteration_loss"][-1],
        **frames,
    }


def losses_file_bytes(iteration_loss: list[float]) -> bytes:
    """The losses as gzipped JSON; mtime=0 so the same losses give the same bytes (and SHA-256)."""
    text = json.dumps({"iteration_loss": iteration_loss}) + "\n"
    return gzip.compress(text.encode("utf-8"), mtime=0)


def export_frames(frames: Path, png: Path) -> dict:
    """The per-epoch reconstruction tiles train_book_models.py saved (tf-cvae: the frames of
    the TensorFlow tutorial's GIF), stacked top to bottom into one greyscale PNG."""
    tiles = [np.load(f) for f in sorted(frames.glob("epoch-*.npy"))]
    if not tiles:
        return {}
    Image.fromarray(np.concatenate(tiles, axis=0)).save(png, optimize=True)
    return {"frames_file": png.name, "frames_sha256": sha256(png), "frames": len(tiles)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="RECIPE:DATASET entries (default: all complete runs)")
    parser.add_argument("--note", default="", help="a remark stored with each exported entry")
    args = parser.parse_args(argv)
    wanted = MODELS if not args.only else [tuple(item.split(":")) for item in args.only]
    WEIGHTS_DIR.mkdir(exist_ok=True)
    current = manifest()
    for recipe, dataset in wanted:
        entry = export(recipe, dataset, WEIGHTS_DIR, args.note)
        if entry is not None:
            current["models"][f"{recipe}/{dataset}"] = entry
            print(f"{recipe}/{dataset}: {entry['file']} {entry['sha256'][:12]} "
                  f"test loss {entry['final']['test_loss']:.4f}")
    total = sum(path.stat().st_size for path in WEIGHTS_DIR.iterdir())  # with losses and frames
    if total > LIMIT_BYTES:
        print(f"the shipped weights take {total / 2**20:.1f} MiB, over the 10 MiB budget", file=sys.stderr)
        return 1
    (WEIGHTS_DIR / MANIFEST).write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    print(f"{len(current['models'])} models, {total / 2**20:.2f} MiB, manifest {WEIGHTS_DIR / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
