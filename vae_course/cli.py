"""The ``vae-course`` command line: train a recipe, evaluate or sample a checkpoint, manage data.

Every failure a user can cause (unknown recipe, missing dataset, corrupt file, bad
checkpoint) ends in one short message and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

from . import __version__

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
MAX_GENERATE = 10_000  # a 100x100 grid: a 5,600-pixel-wide PNG at scale 2; more is not an image


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


class UsageError(CLIError):
    """Bad input the user can fix on the command line (a missing or foreign file, a bad
    number): printed as one line, exit status 2, as argparse exits for its own usage errors."""


def _add_dataset(p: argparse.ArgumentParser) -> None:
    from .datasets import DATASETS
    p.add_argument("--dataset", choices=list(DATASETS), default=None,
                   help="dataset (default: $VAE_COURSE_DATASET, else mnist)")


def _path(text: str) -> Path:
    """A path argument: ``~`` means the home folder, as in a shell (``--out=~/runs`` too)."""
    return Path(text).expanduser()


def _device_name(text: str) -> str:
    """--device values: auto, cpu, cuda, cuda:N (the N-th GPU) or mps."""
    name = text.strip().lower()
    if name in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", name):
        return name
    raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda, cuda:N or mps")


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", type=_device_name, metavar="DEVICE",
                   help="where to run: auto (CUDA > MPS > CPU, the default), cpu, cuda, cuda:N or mps")


def build_parser() -> argparse.ArgumentParser:
    from .recipes import RECIPES

    parser = argparse.ArgumentParser(
        prog="vae-course",
        description="Train, evaluate and sample the variational autoencoders of the vae-course book.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train a named recipe",
                       description="Train one of the course's recipes and write a checkpoint.")
    p.add_argument("--recipe", required=True, metavar="NAME",
                   help="one of: " + ", ".join(RECIPES))
    _add_dataset(p)
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epoch count")
    p.add_argument("--subset", type=int, default=None, metavar="N",
                   help="train on the first N training images (quick runs)")
    _add_device(p)
    p.add_argument("--out", type=_path, default=None, metavar="DIR",
                   help="output folder for checkpoint.pt and history.json "
                        "(default: runs/RECIPE-DATASET)")
    p.add_argument("--resume", action="store_true",
                   help="continue from DIR/checkpoint.pt where it stopped")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--deterministic", action="store_true",
                   help="on a GPU, use only deterministic kernels, so a rerun or a resume gives "
                        "bit-identical numbers (slower; the CPU is deterministic already)")
    p.add_argument("--kl-warmup-epochs", type=int, default=0, metavar="E",
                   help="raise the KL weight linearly from 0 to the recipe's beta over the first E "
                        "epochs (default 0: off; chapter 10)")
    p.add_argument("--free-bits", type=float, default=0.0, metavar="NATS",
                   help="floor on each latent dimension's batch-mean KL, in nats (default 0: off; "
                        "chapter 10)")
    p.add_argument("--lr-schedule", choices=["constant", "one-cycle"], default=None,
                   help="learning-rate schedule (default: the recipe's; one-cycle makes the lr the "
                        "peak of a warm-up and anneal over the run, as the course-fast recipe does)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("doctor", help="check that the course computes correctly on this device",
                       description="Train every recipe for a few steps on the device and on the "
                                   "CPU and compare them, check evaluation and IWAE, report what "
                                   "fit will use. Exits 1 if any check fails.")
    _add_device(p)

    p = sub.add_parser("evaluate", help="test metrics of a checkpoint",
                       description="Test-set ELBO, its components and the per-image "
                                   "reconstruction error of a trained checkpoint.")
    p.add_argument("checkpoint", type=_path)
    _add_dataset(p)
    _add_device(p)
    p.add_argument("--iwae-k", type=int, default=0, metavar="K",
                   help="also estimate log p(x) with K importance samples (Bernoulli models)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate on the first N test images only")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = sub.add_parser("diagnose", help="posterior collapse: which latent dimensions a checkpoint uses",
                       description="Per-dimension KL, active units, mutual information I(x; z), "
                                   "rate and distortion, the IWAE - ELBO gap and bits/dim of a "
                                   "checkpoint on test images, with the loss settings it was trained with.")
    p.add_argument("checkpoint", type=_path)
    _add_dataset(p)
    _add_device(p)
    p.add_argument("--subset", type=int, default=1000, metavar="N",
                   help="use the first N test images (default 1000; the MI estimate is at most log N, "
                        "and its cost grows as N^2)")
    p.add_argument("--k", type=int, default=100, metavar="K",
                   help="importance samples for the IWAE bound (default 100; 0 skips it; Bernoulli "
                        "models on binary images only). The slow part: K decoder passes per image")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws of z (default 0)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = sub.add_parser("generate", help="sample images from a checkpoint",
                       description="Decode samples from the prior N(0, I) into a PNG image grid.")
    p.add_argument("checkpoint", type=_path)
    p.add_argument("--n", type=int, default=64, help=f"number of images (default 64, at most {MAX_GENERATE})")
    p.add_argument("--out", type=_path, required=True, metavar="FILE.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", type=int, default=None,
                   help="class to generate (conditional models only)")
    _add_device(p)

    p = sub.add_parser("data", help="dataset information, download and verification",
                       description="Show where a dataset is found, download it, or verify its checksums.")
    p.add_argument("action", choices=["info", "download", "verify"])
    _add_dataset(p)
    p.add_argument("--root", type=_path, default=None, help="look in (or download to) this folder")
    return parser


# --- commands -------------------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoints import run_lock
    from .datasets import dataset_name
    from .recipes import get_recipe
    from .train import train_recipe

    recipe = get_recipe(args.recipe)
    dataset = dataset_name(args.dataset)
    if args.epochs is not None and args.epochs < 1:
        raise CLIError(f"--epochs must be at least 1 (got {args.epochs})")
    if args.subset is not None and args.subset < 1:
        raise CLIError(f"--subset must be at least 1 (got {args.subset})")
    if args.kl_warmup_epochs < 0:
        raise CLIError(f"--kl-warmup-epochs must be 0 (off) or more (got {args.kl_warmup_epochs})")
    if not args.free_bits >= 0 or args.free_bits == float("inf"):
        raise CLIError(f"--free-bits must be a finite number of nats >= 0 (got {args.free_bits})")
    out = args.out or Path("runs") / f"{recipe.name}-{dataset}"
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a folder; name a folder for the run (it will hold "
                       f"checkpoint.pt)")
    checkpoint = out / "checkpoint.pt"
    try:
        with run_lock(out):  # held through training: a second run into the same folder stops here
            if args.resume and not checkpoint.exists():
                raise CLIError(f"--resume: no checkpoint at {checkpoint}; train without --resume first")
            if not args.resume and checkpoint.exists():
                raise CLIError(f"{checkpoint} already exists; pass --resume to continue it, "
                               f"or choose another --out")
            print(f"training recipe {recipe.name} on {dataset} -> {checkpoint}", file=sys.stderr)
            _, history = train_recipe(recipe, dataset=dataset, epochs=args.epochs, subset=args.subset,
                                      device=args.device, out=out, resume=args.resume, seed=args.seed,
                                      deterministic=args.deterministic, progress=not args.no_progress,
                                      kl_warmup_epochs=args.kl_warmup_epochs, free_bits=args.free_bits,
                                      **({"lr_schedule": args.lr_schedule} if args.lr_schedule else {}))
    except KeyboardInterrupt:  # fit has already said which epoch is saved and how to resume
        return EXIT_INTERRUPTED
    last = history.epochs[-1] if history.epochs else {}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
    print(f"done: {summary}")
    print(f"checkpoint: {checkpoint}")
    return 0


def _checkpoint_dataset(ckpt: dict, override: str | None) -> str:
    from .datasets import dataset_name
    return dataset_name(override or ckpt.get("config", {}).get("dataset"))


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import load_tensors
    from .evaluate import evaluate_elbo, iwae_log_likelihood, reconstruction_errors
    from .checkpoints import load_model
    from .devices import pick_device

    device = pick_device(args.device)
    model, ckpt = load_model(args.checkpoint, device=device)
    training = ckpt["config"].get("training", {})
    dataset = _checkpoint_dataset(ckpt, args.dataset)
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be at least 1 (got {args.limit})")
    x, y = load_tensors(dataset, "test", device=device, subset=args.limit)
    y = y if getattr(model, "conditional", False) else None  # a conditional model needs the labels
    binarize = training.get("binarize", "none")
    elbo = evaluate_elbo(model, x, reconstruction=training.get("reconstruction", "half-sse"),
                         kl=training.get("kl", "closed-form"), beta=training.get("beta", 1.0),
                         sigma=training.get("sigma"), binarize=binarize, y=y)
    errors = reconstruction_errors(model, x, y=y)
    results = {"checkpoint": str(args.checkpoint), "dataset": dataset, "test_images": int(x.shape[0]),
               "test_loss": elbo["loss"], "test_reconstruction": elbo["reconstruction"],
               "test_kl": elbo["kl"], "reconstruction_mse_mean": float(np.mean(errors)),
               "reconstruction_mse_median": float(np.median(errors))}
    if args.iwae_k:
        if args.iwae_k < 0 or y is not None:
            raise CLIError("--iwae-k takes a positive K, for an unconditional Bernoulli model")
        if training.get("reconstruction") != "bernoulli":
            raise CLIError("--iwae-k needs a Bernoulli model (e.g. recipe tf-cvae); this checkpoint "
                           f"uses reconstruction={training.get('reconstruction')!r}")
        nll = -iwae_log_likelihood(model, (x > 0.5).float(), k=args.iwae_k)
        results["iwae_k"] = args.iwae_k
        results["iwae_nll_nats"] = float(np.mean(nll))
    if args.json:
        print(json.dumps(_json_safe(results, "evaluate"), indent=2, allow_nan=False))
    else:
        width = max(map(len, results))
        for key, value in results.items():
            print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0


def _json_safe(results: dict, command: str) -> dict:
    """JSON has no NaN: a non-finite number (in a list too) becomes null, and stderr says so."""
    def finite(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value
    safe = {key: [finite(v) for v in value] if isinstance(value, list) else finite(value)
            for key, value in results.items()}
    for key in [k for k in results if safe[k] != results[k]]:
        print(f"vae-course {command}: {key} is not finite (the model diverged?); written as null",
              file=sys.stderr)
    return safe


def cmd_diagnose(args: argparse.Namespace) -> int:
    from .checkpoints import CheckpointError, load_model
    from .data import load_tensors
    from .devices import pick_device
    from . import reference
    from .diagnostics import diagnose, report

    if args.subset < 2:
        raise UsageError(f"--subset must be at least 2 (got {args.subset}): variances over images need two")
    if args.k < 0:
        raise UsageError(f"--k must be 0 (no IWAE bound) or a positive number of samples (got {args.k})")
    device = pick_device(args.device)
    try:
        model, ckpt = load_model(args.checkpoint, device=device)
        dataset = _checkpoint_dataset(ckpt, args.dataset)
    except (FileNotFoundError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # an unknown dataset named in the checkpoint
        raise UsageError(f"{args.checkpoint}: {exc}; pass --dataset") from None
    training = ckpt["config"].get("training", {})
    x, y = load_tensors(dataset, "test", device=device, subset=args.subset)
    result = diagnose(model, x, y if getattr(model, "conditional", False) else None,
                      reconstruction=training.get("reconstruction", "half-sse"),
                      kl=training.get("kl", "closed-form"), binarize=training.get("binarize", "none"),
                      sigma=training.get("sigma"), k=args.k, seed=args.seed)
    ref, why_not = reference.for_run(ckpt["config"], dataset)
    measured = reference.measure(model, x, ref.recipe, y, seed=args.seed) if ref else None
    if args.json:
        results = {"checkpoint": str(args.checkpoint), "dataset": dataset, **result,
                   "reference": reference.compare(measured, ref) if ref else why_not}
        print(json.dumps(_json_safe(results, "diagnose"), indent=2, allow_nan=False))
    else:
        print(f"checkpoint {args.checkpoint}, {dataset} test set")
        print(report(result))
        print()
        print(reference.report(measured, ref) + f"\n  (measured on {len(x)} test images)" if ref else why_not)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from .checkpoints import load_model
    from .devices import pick_device
    from .plots import save_image_grid

    if not 1 <= args.n <= MAX_GENERATE:
        raise CLIError(f"--n must be from 1 to {MAX_GENERATE} (got {args.n}): more images do not make "
                       f"a viewable grid; run the command several times with other --seed values")
    if args.out.suffix.lower() != ".png":
        raise CLIError(f"--out must name a .png file (got {args.out})")
    if args.out.is_dir():
        raise CLIError(f"--out {args.out} is a folder; name the .png file to write")
    device = pick_device(args.device)
    model, _ = load_model(args.checkpoint, device=device)
    conditional = getattr(model, "conditional", False)
    if args.label is not None and not conditional:
        raise CLIError("--label only works with a conditional model")
    generator = torch.Generator().manual_seed(args.seed)  # CPU: the same images on every device
    images = []
    with torch.no_grad():
        for start in range(0, args.n, 1000):  # decode in batches: memory stays small
            n = min(1000, args.n - start)
            if conditional:
                y = torch.full((n,), 0 if args.label is None else args.label, dtype=torch.long, device=device)
                images.append(model.sample(n, y=y, generator=generator).cpu())
            else:
                images.append(model.sample(n, generator=generator).cpu())
    save_image_grid(torch.cat(images), args.out)
    print(f"wrote {args.n} samples to {args.out}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .datasets import DATASETS, DatasetUnavailable, dataset_folder, dataset_name, download_command, locate
    from .downloads import download, verify

    name = dataset_name(args.dataset)
    info = DATASETS[name]
    folder = dataset_folder(name, root=args.root)  # first: a bad $VAE_COURSE_DATA or --root stops here
    if args.action == "download":
        path = download(name, dest=args.root)
        print(f"{name}: all files present and verified in {path}")
        if dataset_folder(name, root=args.root) != path:
            print(f"note: {name} is read from {dataset_folder(name, root=args.root)}, which comes "
                  f"first in the search (`vae-course data info` shows it)")
        return 0
    if args.action == "verify":
        results = verify(name, root=args.root)
        print(f"{'folder':>12}  {folder or '(none holds any of the files)'}")
        for f, ok in results.items():
            print(f"{'ok' if ok else 'MISSING' if ok is None else 'BAD CHECKSUM':>12}  {f}")
        bad = [f for f, ok in results.items() if ok is False]
        missing = [f for f, ok in results.items() if ok is None]
        if bad or missing:
            raise CLIError(f"{name}: {len(bad)} corrupt and {len(missing)} missing file(s) in "
                           f"{folder or 'no folder'}; run `{download_command(name, folder)}`")
        return 0
    print(f"dataset      {name}")  # info
    print(f"classes      {', '.join(info.class_names)}")
    try:
        print(f"found in     {locate(name, root=args.root, download=False)}")
    except DatasetUnavailable as exc:  # show, don't fail
        print(f"found in     (not complete anywhere) - {str(exc).splitlines()[0]}")
    print(f"env          VAE_COURSE_DATASET={os.environ.get('VAE_COURSE_DATASET', '')} "
          f"VAE_COURSE_DATA={os.environ.get('VAE_COURSE_DATA', '')}")
    print("files        " + ", ".join(info.files.values()))
    print("mirrors      " + ", ".join(info.mirrors))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor
    return 0 if doctor(args.device) else EXIT_FAILURE


COMMANDS = {"doctor": cmd_doctor, "train": cmd_train, "evaluate": cmd_evaluate, "diagnose": cmd_diagnose,
            "generate": cmd_generate, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .datasets import DatasetUnavailable
    from .history import NonFiniteLossError
    from .idx import IDXError

    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"\nvae-course {args.command}: interrupted; nothing half-written was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        print(f"vae-course {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CLIError, DatasetUnavailable, IDXError, ValueError, NonFiniteLossError) as exc:
        print(f"vae-course {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # read-only or full file systems, missing files, permissions
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        reason = exc.strerror or str(exc)
        print(f"vae-course {args.command}: error:{where}: {reason}. Check the path, free space or "
              f"permissions, or choose another output location", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
