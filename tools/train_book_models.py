"""Train (or finish) the full-length models the book is executed with, into the checkpoint cache.

Each run goes through ``vae_course.notebook.trained``, so the chapters find them under the
same keys; a run that was interrupted resumes where its last epoch ended.  For ``tf-cvae``
the reconstructions of 16 fixed test images are saved after every epoch (``frames/``), the
frames the TensorFlow tutorial turns into its GIF.

    VAE_COURSE_DATA=../shared/data python tools/train_book_models.py            # everything
    python tools/train_book_models.py --only pytorch-mlp:mnist:0 tf-cvae:mnist:0
    python tools/train_book_models.py --only matlab-2019:mnist:0:shuffle=True   # with overrides
    python tools/train_book_models.py --summary   # no training: write the results file below

``--summary`` writes ``benchmarks/results/book-runs.json``: for every complete run of RUNS,
its per-epoch history, last mini-batch loss, wall time and hardware.  The "Reproducing the
sources" page reads it for the spread over seeds (the seed-0 models also ship as weights).

Runs are listed in the order the book needs them; the log says how long each one took.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import vae_course
from vae_course import data, notebook
from vae_course.devices import describe_hardware
from vae_course.evaluate import inference
from vae_course.plots import tile
from vae_course.recipes import get_recipe

# (recipe, dataset, seed, overrides): the book's models first, then the extra seeds the
# "Reproducing the sources" page reports as mean +- sd, then Fashion-MNIST.
RUNS = [
    ("pytorch-mlp", "mnist", 0, {}),
    ("tf-cvae", "mnist", 0, {}),
    ("matlab-2022", "mnist", 0, {}),
    ("course", "mnist", 0, {}),
    ("matlab-2019", "mnist", 0, {}),
    ("tf-cvae", "mnist", 1, {}),
    ("tf-cvae", "mnist", 2, {}),
    ("pytorch-mlp", "mnist", 1, {}),
    ("pytorch-mlp", "mnist", 2, {}),
    ("matlab-2019", "mnist", 0, {"shuffle": True}),  # the source's fixed batch order vs shuffled
    ("matlab-2022", "mnist", 1, {}),
    ("matlab-2022", "mnist", 2, {}),
    ("pytorch-mlp", "fashion-mnist", 0, {}),
    ("tf-cvae", "fashion-mnist", 0, {}),
    ("matlab-2022", "fashion-mnist", 0, {}),
    ("course", "fashion-mnist", 0, {}),
    ("matlab-2019", "fashion-mnist", 0, {}),
]


class ReconstructionFrames:
    """Callback: after every epoch, save the reconstructions (one sample of z each, as the
    tutorial draws them) of the same 16 test images to ``folder/epoch-NN.npy``."""

    def __init__(self, images: torch.Tensor, folder: Path, seed: int = 0) -> None:
        self.images, self.folder, self.seed = images, folder, seed

    def on_epoch_end(self, state) -> None:
        model = state.model
        device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(self.seed)
        with inference(model):
            mu, logvar = model.encode(self.images.to(device))
            eps = torch.randn(mu.shape, generator=generator).to(device)
            images = model.decode(mu + eps * torch.exp(0.5 * logvar))
        self.folder.mkdir(parents=True, exist_ok=True)
        np.save(self.folder / f"epoch-{state.epoch:02d}.npy", np.round(tile(images, ncols=4) * 255).astype(np.uint8))


def train(recipe: str, dataset: str, seed: int, overrides: dict) -> None:
    folder = notebook.run_dir(recipe, dataset, seed=seed, overrides=overrides)  # where trained() keeps it
    callbacks = []
    if recipe == "tf-cvae":
        test_x, _ = data.load_tensors(dataset, "test")
        images = data.binarized(test_x[:16], get_recipe(recipe).binarize)
        callbacks.append(ReconstructionFrames(images, folder / "frames"))
    start = time.perf_counter()
    _, history = notebook.trained(recipe, dataset=dataset, seed=seed, progress=False,
                                  callbacks=callbacks, **overrides)
    last = history.epochs[-1]
    facts = folder / "run.json"
    if not facts.exists():  # where it was trained, for the manifest of the shipped weights
        facts.write_text(json.dumps({"hardware": describe_hardware(), "torch": torch.__version__,
                                     "vae_course": vae_course.__version__}, indent=1) + "\n")
    print(f"{recipe} {dataset} seed {seed} {overrides or ''}: {len(history.epochs)} epochs, "
          f"test loss {last['test_loss']:.4f}, {time.perf_counter() - start:.0f} s this call, "
          f"{sum(e['seconds'] for e in history.epochs):.0f} s of training in all", flush=True)


SUMMARY = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "book-runs.json"


def summarize(path: Path = SUMMARY) -> dict:
    """Write what every complete run of RUNS reached (nothing is trained).

    A run whose checkpoint is not in this machine's cache keeps the record ``path`` already
    holds for it, so a summary written on a new machine loses nothing trained elsewhere."""
    from vae_course.checkpoints import load_checkpoint
    recorded = json.loads(path.read_text())["runs"] if path.exists() else []
    recorded = {(r["recipe"], r["dataset"], r["seed"], json.dumps(r["overrides"], sort_keys=True)): r
                for r in recorded}
    runs = []
    for recipe, dataset, seed, overrides in RUNS:
        folder = notebook.run_dir(recipe, dataset, seed=seed, overrides=overrides)
        if not (folder / "checkpoint.pt").exists():
            earlier = recorded.get((recipe, dataset, seed, json.dumps(overrides, sort_keys=True)))
            if earlier is not None:
                runs.append(earlier)
            continue
        history = load_checkpoint(folder / "checkpoint.pt")["history"]
        if len(history["epochs"]) < get_recipe(recipe).epochs:
            continue
        facts = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
        runs.append({"recipe": recipe, "dataset": dataset, "seed": seed, "overrides": overrides,
                     "epochs": history["epochs"], "last_batch_loss": history["iteration_loss"][-1],
                     "train_seconds": sum(e["seconds"] for e in history["epochs"]),
                     "hardware": facts.get("hardware", "not recorded")})
    path.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    print(f"{len(runs)} complete runs -> {path}")
    return {"runs": runs}


def label(recipe: str, dataset: str, seed: int, overrides: dict) -> str:
    """How --only names a run: ``matlab-2019:mnist:0:shuffle=True``."""
    return ":".join([recipe, dataset, str(seed), *(f"{k}={v}" for k, v in overrides.items())])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*",
                        help="RECIPE:DATASET:SEED[:KEY=VALUE...] entries to run (default: all)")
    parser.add_argument("--summary", action="store_true",
                        help=f"train nothing; write {SUMMARY.relative_to(SUMMARY.parents[2])}")
    args = parser.parse_args(argv)
    if args.summary:
        summarize()
        return 0
    runs = RUNS
    if args.only:
        unknown = set(args.only) - {label(*run) for run in RUNS}
        if unknown:
            parser.error(f"--only {' '.join(sorted(unknown))}: not in RUNS; choose from "
                         + " ".join(label(*run) for run in RUNS))
        runs = [run for run in RUNS if label(*run) in args.only]
    for recipe, dataset, seed, overrides in runs:
        train(recipe, dataset, seed, overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
