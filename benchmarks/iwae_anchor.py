"""An outside anchor: the importance-weighted test NLL on dynamically binarized MNIST, next to papers.

    python -m benchmarks.iwae_anchor --model mlp --epochs 100 --k 5000 --images 10000
    python -m benchmarks.iwae_anchor --model course-dynamic --epochs 30 --k 5000 --images 2000
    python -m benchmarks.iwae_anchor --model mlp --epochs 100 --train-minutes 50     # stop early
    python -m benchmarks.iwae_anchor --model mlp --score-only --k 5000 --images 1000  # no training
    python -m benchmarks.iwae_anchor --report benchmarks/results/iwae-anchor-mnist.json

Burda, Grosse & Salakhutdinov (2016, "Importance Weighted Autoencoders", Table 1) report
86.76 nats for a VAE with one stochastic layer on MNIST; pythae's reproduction of a VAE on
binary MNIST reports 89.78.  This benchmark trains, through ``vae_course.train.train_recipe``
(resumably: each model trains into ``<work>/<model>/checkpoint.pt``), two Bernoulli VAEs on
dynamically binarized MNIST (fresh ``bernoulli(x)`` pixels every mini-batch):

- ``mlp``: 784-200-200-50, the shape of the paper's one-stochastic-layer model;
- ``course-dynamic``: the course recipe (MATLAB R2022b conv net, latent 16, Bernoulli
  likelihood, Adam 1e-3, batch 128) trained on binarized instead of grey-level pixels;

then estimates ``-log p(x)`` per test image with ``vae_course.evaluate.iwae_log_likelihood``
(k importance samples) on one fixed binarization of the test set (``DYNAMIC_TEST_SEED``, as
``evaluate_elbo`` draws it), either the whole test set or a fixed random subset of it, and
reports the mean with its standard error (std of the per-image estimates / sqrt(n)).  The
per-image estimates are saved as they are computed, so an interrupted evaluation continues.
Every difference from the papers' protocols is written into the results file.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/iwae_anchor.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, hardware, read_json, write_json
from vae_course import data
from vae_course.checkpoints import load_checkpoint, load_model
from vae_course.data import _derived_seed, binarized
from vae_course.datasets import DATASETS, cache_dir, split_files
from vae_course.devices import describe_hardware, pick_device
from vae_course.history import History
from vae_course.idx import read_idx
from vae_course.evaluate import DYNAMIC_TEST_SEED, evaluate_elbo, iwae_log_likelihood
from vae_course.recipes import Recipe, get_recipe
from vae_course.rng import seed_everything
from vae_course.train import train_recipe

SUBSET_SEED = 2016  # the fixed random order of test images a subset is taken from
CHUNK = 25          # images per saved piece of the IWAE evaluation
TRAINING_CALLS = "training-calls.json"  # beside a checkpoint: which call trained which epochs, where

# The 784-200-200-50 MLP of Burda et al.'s one-stochastic-layer model, in vae_course's terms.
MLP_RECIPE = Recipe(
    name="iwae-anchor-mlp",
    title="MLP VAE 784-200-200-50 (the shape of Burda et al.'s one-stochastic-layer VAE)",
    source="Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016",
    source_url="https://arxiv.org/abs/1509.00519",
    arch="mlp",
    model_kwargs={"hidden": [200, 200], "latent_dim": 50},
    reconstruction="bernoulli",
    kl="closed-form",
    lr=1e-3,
    batch_size=128,
    epochs=100,
    binarize="dynamic",
    notes="ReLU hidden units (vae_course's MLP); the paper used tanh.",
)

MODELS = {
    "mlp": {"recipe": MLP_RECIPE, "overrides": {},
            "label": "MLP 784-200-200-50, ReLU"},
    "course-dynamic": {"recipe": get_recipe("course"), "overrides": {"binarize": "dynamic"},
                       "label": "course recipe (conv, latent 16), Bernoulli on dynamically binarized pixels"},
}

PUBLISHED = {
    "burda2016": {
        "value_nats": 86.76,
        "source": ("Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016, "
                   "Table 1: MNIST, VAE, one stochastic layer, trained with k = 1"),
        "protocol": {
            "data": "MNIST, dynamically binarized during training",
            "architecture": "784-200-200-50 (two deterministic layers of 200 tanh units, 50 Gaussian latents), "
                            "mirrored decoder, Bernoulli likelihood",
            "training": "Adam; 3^i passes at learning rate 1e-3 * 10^(-i/7) for i = 0..7: 3280 passes in total",
            "evaluation": "k = 5000 importance samples, the whole 10 000-image test set",
        },
    },
    "pythae": {
        "value_nats": 89.78,
        "source": ("pythae (Chadebec et al., 'Pythae: Unifying Generative Autoencoders in Python', "
                   "NeurIPS 2022 Datasets and Benchmarks): its reproducibility table / model card "
                   "clementchadebec/reproduced_vae, 'VAE | Binary MNIST | NLL (200 IS) | 89.78 (0.01)', "
                   "reproducing the VAE of Rezende & Mohamed 2015, Table 1 (reference value 89.9)"),
        "protocol": {
            "data": "'Binary MNIST' (static or dynamic binarization: not verified offline)",
            "architecture": "that of Rezende & Mohamed 2015's VAE (not verified offline)",
            "training": "not verified offline",
            "evaluation": "200 importance samples (the table's 'NLL (200 IS)'); 0.01 is its spread over runs",
        },
    },
}


# --------------------------------------------------------------------------- arguments

def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1, with a message that names the problem."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class TimeBudgetSpent(Exception):
    """Raised by :class:`StopAfter` after an epoch's checkpoint is written."""


class StopAfter:
    """A ``fit`` callback: stop after the first epoch that ends ``minutes`` after it was made."""

    def __init__(self, minutes: float, clock=time.monotonic):
        self.minutes, self.clock = minutes, clock
        self.start = clock()

    def on_epoch_end(self, state) -> None:
        if self.clock() - self.start >= 60 * self.minutes and state.epoch < state.epochs:
            raise TimeBudgetSpent(f"stopped after epoch {state.epoch} of {state.epochs}: "
                                  f"the --train-minutes {self.minutes:g} budget is spent")


# --------------------------------------------------------------------------- pieces

def binary_test_images(dataset: str, images: int, subset_seed: int = SUBSET_SEED) -> tuple[torch.Tensor, np.ndarray]:
    """The binary test images the NLL is estimated on, and their indices in the test set.

    The whole test set is binarized once, in its order, with ``DYNAMIC_TEST_SEED`` (the same
    binary images ``evaluate_elbo(binarize="dynamic")`` scores); then the first ``images`` of a
    fixed random permutation (``subset_seed``) are taken, so a smaller subset is the start of
    a larger one and ``images`` = the test set's size is the whole test set (in that order).
    """
    x, _ = data.load_tensors(dataset, "test")
    if images > len(x):
        raise ValueError(f"--images {images}: the {dataset} test set has only {len(x)} images")
    binary = binarized(x, "dynamic", torch.Generator().manual_seed(DYNAMIC_TEST_SEED))
    index = torch.randperm(len(x), generator=torch.Generator().manual_seed(subset_seed))[:images].numpy()
    return binary[torch.from_numpy(index)], index


def iwae_per_image(model, x_binary: torch.Tensor, *, k: int, seed: int, store: Path | None = None,
                   progress: bool = True) -> tuple[np.ndarray, float]:
    """``log p(x)`` estimates per image (k samples), in pieces of ``CHUNK`` images, and the
    seconds spent computing them.

    Piece ``i`` (images ``i * CHUNK`` to ``(i + 1) * CHUNK``) draws from a generator seeded by
    ``(seed, i)``, so a whole piece's numbers depend neither on where an interrupted run stopped
    nor on how many images were asked for (only a last, partial piece differs: pass whole
    pieces, as :func:`measure` does).  With ``store`` the estimates so far are saved there
    (``.npy``, and the seconds spent in ``<store>.seconds``) after every piece, and a later
    call continues from them.
    """
    clock = store.with_suffix(".seconds") if store is not None else None
    done = np.load(store) if store is not None and store.exists() else np.zeros(0)
    spent = float(clock.read_text()) if clock is not None and clock.exists() and len(done) else 0.0
    first_piece = min(len(done), len(x_binary)) // CHUNK  # a partial last piece is recomputed
    values = [done[:first_piece * CHUNK]]
    pieces = range(first_piece, math.ceil(len(x_binary) / CHUNK))
    started = time.monotonic()
    for n, piece in enumerate(pieces, 1):
        t0 = time.perf_counter()
        generator = torch.Generator().manual_seed(_derived_seed(seed, piece))
        rows = x_binary[piece * CHUNK:(piece + 1) * CHUNK]
        values.append(iwae_log_likelihood(model, rows, k=k, generator=generator))
        spent += time.perf_counter() - t0
        if store is not None:
            # Keep estimates beyond this request (a larger earlier run) rather than drop them.
            so_far = np.concatenate(values)
            np.save(store, so_far if len(so_far) >= len(done) else np.concatenate([so_far, done[len(so_far):]]))
            clock.write_text(f"{spent:.1f}")
        if progress:
            rate = (time.monotonic() - started) / n
            print(f"  IWAE k={k}: {min((piece + 1) * CHUNK, len(x_binary))}/{len(x_binary)} images, "
                  f"{rate:.0f} s per {CHUNK}", file=sys.stderr, flush=True)
    return np.concatenate(values)[:len(x_binary)], spent


def nll_summary(log_px: np.ndarray) -> dict[str, float]:
    """Mean ``-log p(x)`` over images with its standard error (std / sqrt(n)) and the std."""
    nll = -np.asarray(log_px, dtype=np.float64)
    if nll.size == 0:
        raise ValueError("nll_summary: no estimates")
    sd = float(nll.std(ddof=1)) if nll.size > 1 else math.nan
    return {"mean": float(nll.mean()), "standard_error": sd / math.sqrt(nll.size), "std": sd,
            "images": int(nll.size)}


def protocol_differences(model_name: str, *, epochs: int, k: int, images: int, test_size: int,
                         train_images: int, train_size: int, recipe: Recipe, overrides: dict) -> list[str]:
    """Every way this measurement departs from Burda et al.'s protocol (and pythae's)."""
    settings = {**{f: getattr(recipe, f) for f in ("batch_size", "lr", "binarize")}, **overrides}
    diffs = []
    if model_name == "mlp":
        diffs.append("ReLU hidden units; Burda et al. used tanh")
        diffs.append("PyTorch's default initialisation")
    else:
        diffs.append("a convolutional encoder and decoder (the course recipe's MATLAB R2022b net) with "
                     "16 latents, not the paper's 784-200-200-50 MLP")
        diffs.append("trained on dynamically binarized pixels, unlike the course recipe itself "
                     "(a Bernoulli likelihood on grey levels)")
    diffs.append(f"{epochs} epoch{'' if epochs == 1 else 's'} at a constant Adam learning rate {settings['lr']:g}, batch "
                 f"{settings['batch_size']}; Burda et al. trained 3280 passes with the learning rate "
                 f"decayed from 1e-3 in 8 stages")
    if k != 5000:
        diffs.append(f"k = {k} importance samples, not 5000: a looser bound, so in expectation a "
                     f"higher NLL than with 5000")
    if images < test_size:
        diffs.append(f"{images} of the {test_size} test images (a fixed random subset, seed "
                     f"{SUBSET_SEED}), so the mean carries a sampling error (the ± column)")
    if train_images < train_size:
        diffs.append(f"trained on the first {train_images} of the {train_size} training images (a smoke run)")
    diffs.append(f"the test images binarized once, with a fixed seed ({DYNAMIC_TEST_SEED}); how "
                 f"Burda et al. binarized theirs is not verified here")
    diffs.append("pythae's 89.78 used k = 200 on its 'Binary MNIST'; its binarization, "
                 "architecture and epochs are not verified here")
    return diffs


# --------------------------------------------------------------------------- one model

def train(model_name: str, *, dataset: str, epochs: int, work: Path, seed: int, train_subset: int | None,
          train_minutes: float | None, progress: bool, device, score_only: bool = False):
    """Train (or resume) one model into ``work/model_name`` up to ``epochs``; return
    ``(model, history, target_epochs, stopped)``, ``stopped`` saying why it has fewer epochs.

    ``score_only``: no training, the checkpoint as it stands (its target: the epochs it was
    being trained for).
    """
    spec = MODELS[model_name]
    folder = work / model_name
    if score_only:
        path = folder / "checkpoint.pt"
        if not path.exists():
            raise FileNotFoundError(f"--score-only: no checkpoint {path} to score; train first "
                                    f"(the same command without --score-only)")
        model, ckpt = load_model(path, device=device)
        history = History.from_dict(ckpt["history"])
        target = ckpt["config"]["training"]["epochs"]
        stopped = None if len(history.epochs) >= target else \
            f"scored at epoch {len(history.epochs)} of {target} (--score-only)"
        return model, history, target, stopped
    callbacks = [StopAfter(train_minutes)] if train_minutes is not None else []
    first = len(_trained_epochs(folder)) + 1
    try:
        model, history = train_recipe(spec["recipe"], dataset=dataset, epochs=epochs, subset=train_subset,
                                      device=device, out=folder, resume=True, progress=progress,
                                      callbacks=callbacks, seed=seed, **spec["overrides"])
        stopped = None
    except TimeBudgetSpent as stop:
        model, ckpt = load_model(folder / "checkpoint.pt", device=device)
        history, stopped = History.from_dict(ckpt["history"]), str(stop)
    if len(history.epochs) >= first:
        _record_training_call(folder, first, len(history.epochs))
    return model, history, epochs, stopped


def _trained_epochs(folder: Path) -> list:
    """The epochs the checkpoint in ``folder`` holds (none before the first call)."""
    path = folder / "checkpoint.pt"
    return load_checkpoint(path)["history"]["epochs"] if path.exists() else []


def _record_training_call(folder: Path, first: int, last: int) -> None:
    """Note that this call trained epochs ``first``..``last`` on this machine, at this thread
    count: a later ``--score-only`` or rescoring call may run elsewhere."""
    calls = read_json(folder / TRAINING_CALLS) or []
    calls.append({"epochs": [first, last], "hardware": describe_hardware()})
    write_json(folder / TRAINING_CALLS, calls)


def training_hardware(folder: Path) -> str:
    """Where the checkpoint's epochs were trained, from the record of training calls."""
    calls = read_json(folder / TRAINING_CALLS) or []
    if not calls:
        return "not recorded"
    if len({c["hardware"] for c in calls}) == 1:
        return calls[0]["hardware"]
    return "; ".join(f"epochs {c['epochs'][0]}-{c['epochs'][1]} on {c['hardware']}" for c in calls)


def measure(model_name: str, *, dataset: str = "mnist", epochs: int, k: int, images: int, work: Path,
            seed: int = 0, train_subset: int | None = None, train_minutes: float | None = None,
            progress: bool = True, device="cpu", score_only: bool = False) -> dict[str, Any]:
    """Train (or resume) ``model_name`` and estimate its IWAE NLL: the results file's entry."""
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(MODELS)}")
    device = pick_device(device)
    test_x, _ = data.load_tensors(dataset, "test")
    test_size = len(test_x)
    # Whole pieces of CHUNK images, so an image's estimate does not depend on --images.
    x_binary, index = binary_test_images(dataset, min(test_size, math.ceil(images / CHUNK) * CHUNK))
    model, history, target_epochs, stopped = train(model_name, dataset=dataset, epochs=epochs, work=work, seed=seed,
                                    train_subset=train_subset, train_minutes=train_minutes,
                                    progress=progress, device=device, score_only=score_only)
    trained_epochs = len(history.epochs)
    spec = MODELS[model_name]
    recipe = spec["recipe"]
    # Subsets are nested, so one file of estimates serves every --images (a cut-short run too).
    store = work / model_name / f"iwae-e{trained_epochs}-k{k}-seed{seed}.npy"
    log_px, iwae_seconds = iwae_per_image(model, x_binary, k=k, seed=seed, store=store, progress=progress)
    log_px, index = log_px[:images], index[:images]
    seed_everything(seed)  # the one-sample ELBOs draw z
    elbo = evaluate_elbo(model, test_x.to(device), reconstruction="bernoulli", kl="closed-form",
                         binarize="dynamic")
    # The same bound with k = 1 on the very images of the IWAE estimate: their gap is the
    # tightening that importance sampling brings, free of the subset's sampling error.
    elbo_subset = evaluate_elbo(model, x_binary[:images].to(device), reconstruction="bernoulli",
                                kl="closed-form")
    train_size = len(read_idx(split_files(dataset, "train")[1]))  # the labels file: cheap to read
    train_images = min(train_subset or train_size, train_size)
    return {
        "model": spec["label"],
        "recipe": recipe.name,
        "arch": dict(model.config),
        "training": {"epochs": trained_epochs, "target_epochs": target_epochs, "stopped": stopped,
                     "batch_size": recipe.batch_size, "lr": recipe.lr, "optimizer": "Adam (constant lr)",
                     "binarize": spec["overrides"].get("binarize", recipe.binarize),
                     "likelihood": "Bernoulli", "train_images": train_images, "seed": seed,
                     "wall_seconds": round(sum(e["seconds"] for e in history.epochs), 1),
                     "hardware": training_hardware(work / model_name)},
        "iwae": {"k": k, **nll_summary(log_px), "test_images": test_size,
                 "subset": "whole test set" if images == test_size else
                           f"fixed random subset (torch.randperm, seed {SUBSET_SEED})",
                 "subset_indices_head": [int(i) for i in index[:10]],
                 "test_binarization": f"one Bernoulli draw, generator seed {DYNAMIC_TEST_SEED}",
                 "wall_seconds": round(iwae_seconds, 1)},
        "elbo_k1": {"negative_elbo_nats": elbo["loss"], "reconstruction": elbo["reconstruction"],
                    "kl": elbo["kl"], "images": len(test_x),
                    "on_iwae_images": elbo_subset["loss"],
                    "note": "one sample of z, analytic KL; on the whole binarized test set, and "
                            "on_iwae_images: on the images of the IWAE estimate"},
        "test_loss_per_epoch": [e["test_loss"] for e in history.epochs],
        "protocol_differences": protocol_differences(model_name, epochs=trained_epochs, k=k, images=images,
                                                     test_size=test_size, train_images=train_images,
                                                     train_size=train_size,
                                                     recipe=recipe, overrides=spec["overrides"]),
        "hardware": describe_hardware(),
        "hardware_detail": hardware(device),
    }


# --------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.iwae_anchor", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), help="which model to train and score")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="training epochs (default: mlp 100, course-dynamic 30); a finished run "
                             "with more epochs is scored as it is")
    parser.add_argument("--k", type=positive_int, default=5000, help="importance samples per image (default 5000)")
    parser.add_argument("--images", type=positive_int, default=10_000,
                        help="test images (default 10000, the whole test set; fewer: a fixed random subset)")
    parser.add_argument("--work", type=Path, default=None, metavar="DIR",
                        help="checkpoints and per-image estimates (default <vae-course cache>/benchmarks/"
                             "iwae-anchor-<dataset>-seed<seed>)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="results file (default benchmarks/results/iwae-anchor-<dataset>.json; "
                             "<work>/iwae-anchor-<dataset>.json with --train-subset)")
    parser.add_argument("--dataset", default="mnist", choices=sorted(DATASETS),
                        help="default mnist, the papers' dataset")
    parser.add_argument("--train-subset", type=positive_int, default=None, metavar="N",
                        help="train on the first N training images only (a smoke test)")
    parser.add_argument("--train-minutes", type=positive_float, default=None, metavar="M",
                        help="stop training after the first epoch that ends M minutes after the start "
                             "of this call, and score that checkpoint (run again to continue)")
    parser.add_argument("--score-only", action="store_true",
                        help="no training: score the checkpoint in --work as it stands (e.g. after "
                             "stopping a long run), with --k and --images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or mps")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="print the comparison table of a results file and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.report is not None:
        from benchmarks.report import iwae_anchor_table
        results = read_json(args.report)
        if results is None:
            parser.error(f"--report {args.report}: no such results file")
        print(iwae_anchor_table(results))
        return 0
    if args.model is None:
        parser.error("--model is required (mlp or course-dynamic), or --report JSON")
    if args.score_only and (args.epochs is not None or args.train_minutes is not None):
        parser.error("--score-only trains nothing: leave out --epochs and --train-minutes")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    epochs = args.epochs or MODELS[args.model]["recipe"].epochs
    work = args.work or cache_dir() / "benchmarks" / f"iwae-anchor-{args.dataset}-seed{args.seed}"
    if args.score_only and not (work / args.model / "checkpoint.pt").exists():
        parser.error(f"--score-only: no checkpoint {work / args.model / 'checkpoint.pt'} to score; "
                     f"train it first (the same command without --score-only)")
    path = args.json or ((work if args.train_subset else RESULTS) / f"iwae-anchor-{args.dataset}.json")
    try:
        test_size = len(data.load_tensors(args.dataset, "test")[0])
    except (OSError, ValueError) as error:
        parser.error(f"cannot read the {args.dataset} test set: {error}")
    if args.images > test_size:
        parser.error(f"--images {args.images}: the {args.dataset} test set has only {test_size} images")

    results = read_json(path) or {}
    if results.get("benchmark") != "iwae-anchor":
        results = {"benchmark": "iwae-anchor", "dataset": args.dataset, "published": PUBLISHED, "models": {}}
    elif results.get("dataset") != args.dataset:
        parser.error(f"{path} holds results on {results.get('dataset')}, not {args.dataset}; use --json NEW.json")
    entry = measure(args.model, dataset=args.dataset, epochs=epochs, k=args.k, images=args.images, work=work,
                    seed=args.seed, train_subset=args.train_subset, train_minutes=args.train_minutes,
                    progress=not args.no_progress, device=args.device, score_only=args.score_only)
    results["published"] = PUBLISHED
    results["models"][args.model] = entry
    write_json(path, results)
    iwae = entry["iwae"]
    print(f"{args.model}: {entry['training']['epochs']} epochs, IWAE NLL {iwae['mean']:.2f} ± "
          f"{iwae['standard_error']:.2f} nats (k={iwae['k']}, {iwae['images']} test images); "
          f"-ELBO {entry['elbo_k1']['negative_elbo_nats']:.2f}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
