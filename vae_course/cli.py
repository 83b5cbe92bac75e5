"""The ``vae-course`` command line: train a recipe, evaluate or sample a checkpoint, manage data.

This module is what you can type (the argument parser, :func:`build_parser`) and how a run
ends (:func:`main`: one short message and a non-zero exit for every failure a user can cause
- unknown recipe, missing dataset, corrupt file, bad checkpoint - never a traceback); what
each subcommand does is in ``vae_course.cli_commands``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from . import __version__
from .cli_commands import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, MAX_GENERATE, CLIError, UsageError,
                           cmd_data, cmd_diagnose, cmd_doctor, cmd_evaluate, cmd_generate, cmd_train)


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
    p.add_argument("--json", action="store_true",
                   help="print the checks as JSON (passed, failed, seconds, device, and each check's "
                        "name, status, ok and detail) instead of the table")

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
