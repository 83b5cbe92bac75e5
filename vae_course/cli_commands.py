"""What each ``vae-course`` subcommand does: train, evaluate, diagnose, generate, data, doctor.

``vae_course.cli`` parses the command line and calls ``cmd_<command>(args)`` with the parsed
arguments. A command returns the exit status; every failure a user can cause (unknown
recipe, missing dataset, corrupt file, bad checkpoint) is raised as :class:`CLIError` or
:class:`UsageError` (or one of the package's own errors), which ``cli.main`` prints as one
short line, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
MAX_GENERATE = 10_000  # a 100x100 grid: a 5,600-pixel-wide PNG at scale 2; more is not an image


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


class UsageError(CLIError):
    """Bad input the user can fix on the command line (a missing or foreign file, a bad
    number): printed as one line, exit status 2, as argparse exits for its own usage errors."""


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
    changed = [flag for flag, on in (("--subset", args.subset is not None),
                                     ("--kl-warmup-epochs", args.kl_warmup_epochs > 0),
                                     ("--free-bits", args.free_bits > 0),
                                     ("--lr-schedule", args.lr_schedule not in (None, recipe.lr_schedule)))
               if on]
    print(epoch_table(recipe, dataset, history.epochs, changed))
    last = history.epochs[-1] if history.epochs else {}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
    print(f"done: {summary}")
    print(f"checkpoint: {checkpoint}")
    return 0


def epoch_table(recipe, dataset: str, epochs: list[dict], changed: list[str]) -> str:
    """The run's losses after every epoch beside what they can be checked against: the numbers
    the source printed after each epoch (MATLAB R2019b does, on MNIST) and the book's shipped
    run of the same recipe and dataset (seed 0, ``vae_course/weights/manifest.json``). Those
    columns are left out, with the reason, when ``changed`` names options that make the run
    a different experiment (``--subset``, a warm-up, ...)."""
    from .pretrained_models import manifest

    columns, legend = {}, []
    source = recipe.reported_numbers.get("test_loss_per_epoch")
    if source and dataset == "mnist":
        columns["source printed"] = source
        legend.append(f"source printed: what the {recipe.source} printed after each epoch")
    shipped = manifest()["models"].get(f"{recipe.name}/{dataset}")
    if shipped:
        columns["shipped run"] = [e["test_loss"] for e in shipped["history"]]
        legend.append("shipped run: the book's run (seed 0) whose weights ship with vae_course")
    lines = [f"losses per image after each epoch ({recipe.name} on {dataset}, the recipe's units)"]
    if changed and columns:
        lines.append(f"  not set beside the {' and the '.join(columns)}: "
                     f"{', '.join(changed)} made this run a different experiment")
        columns, legend = {}, []
    lines += [f"  {line}" for line in legend]
    lines.append(f"{'epoch':>5}" + "".join(f"{h:>16}" for h in ["train loss", "test loss", *columns]))
    for record in epochs:
        n = record["epoch"]
        row = [f"{n:>5}", _cell(record["train_loss"]), _cell(record.get("test_loss"))]
        row += [_cell(values[n - 1] if n <= len(values) else None) for values in columns.values()]
        lines.append("".join(row))
    return "\n".join(lines)


def _cell(value) -> str:
    return f"{value:>16.4f}" if value is not None else f"{'-':>16}"


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
    return 0 if doctor(args.device, as_json=args.json) else EXIT_FAILURE
