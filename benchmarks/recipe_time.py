"""End-to-end wall time of a whole recipe, the way a user runs it, with each speed option.

    python -m benchmarks.recipe_time --device cuda          # matlab-2022, 30 epochs, four variants
    python -m benchmarks.recipe_time --device cuda --variants engine engine+bf16+cudagraphs
    python -m benchmarks.recipe_time --epochs 1 --subset 2048   # a smoke test, on any machine

Each variant runs ``vae_course.train.train_recipe`` from scratch: the data moved to the
device, every epoch with its test-set evaluation, no checkpoint files. The clock covers
the whole call, so ``torch.compile``'s compiling and the first CUDA-graph capture are
included, as a user would pay them (one short untimed run first absorbs the process's one-off
costs, so they do not all land on the first variant). The target of the course: the 30-epoch MATLAB R2022b
recipe in at most 10 s on an H100 (MathWorks' walkthrough reports 28 min 46 s).

Variants use ``benchmarks.speed``'s names (``engine`` plus ``+bf16``, ``+compile``,
``+cudagraphs``, ``+channels_last``, ``+contiguous``); runs are sequential, not
interleaved, because one run is the whole recipe. Results go to
``benchmarks/results/recipe-time-<hardware>.json``, one entry per recipe and variant.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/recipe_time.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, hardware, hardware_slug, read_json, synchronize, write_json
from benchmarks.speed import Variant, compile_setting, parse_variant
from vae_course import data
from vae_course.datasets import DATASETS
from vae_course.recipes import get_recipe
from vae_course.devices import pick_device
from vae_course.train import train_recipe

DEFAULT_VARIANTS = ("engine", "engine+bf16", "engine+compile", "engine+bf16+cudagraphs")


def time_recipe(recipe: str, variant: Variant, *, dataset: str, device: torch.device,
                epochs: int | None, subset: int | None, seed: int) -> dict[str, Any]:
    """Train ``recipe`` once with the (engine) variant's options; wall time and what it reached."""
    options = {"bf16": variant.bf16, "torch_compile": compile_setting(variant), "seed": seed}
    if variant.channels_last is not None:
        options["channels_last"] = variant.channels_last
    synchronize(device)
    start = time.perf_counter()
    _, history = train_recipe(recipe, dataset=dataset, epochs=epochs, subset=subset, device=device,
                              progress=False, **options)
    synchronize(device)
    wall = time.perf_counter() - start
    last = history.epochs[-1]
    return {"variant": variant.name, "dataset": dataset, "epochs": len(history.epochs), "subset": subset,
            "wall_s": round(wall, 2),
            "epoch_seconds": [round(r["seconds"], 3) for r in history.epochs],
            "final_train_loss": last["train_loss"], "final_test_loss": last["test_loss"],
            "hardware": hardware(device)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="matlab-2022")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
    parser.add_argument("--dataset", default="fashion-mnist", choices=sorted(DATASETS))
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's own count")
    parser.add_argument("--subset", type=int, default=None, metavar="N", help="first N images (a smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="default benchmarks/results/recipe-time-<hardware>.json (merged by recipe and "
                             "variant); shortened runs (--epochs/--subset) print only unless --json is given")
    args = parser.parse_args(argv)
    get_recipe(args.recipe)
    variants = [parse_variant(name) for name in args.variants]
    for variant in variants:
        if variant.loop != "engine":
            parser.error(f"variant {variant.name!r}: recipe_time measures the engine only (engine+...)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    data.load_tensors(args.dataset, "train", subset=args.subset)  # find (or fail on) the data before timing
    # Untimed: the process's one-off costs (CUDA context, cuDNN/oneDNN kernel selection) would
    # otherwise all land on the first variant.
    train_recipe(args.recipe, dataset=args.dataset, epochs=1, subset=512, device=device, progress=False)

    shortened = args.epochs is not None or args.subset is not None
    path = args.json or (None if shortened else RESULTS / f"recipe-time-{hardware_slug(hardware(device))}.json")
    results = (read_json(path) if path else None) or {"benchmark": "recipe_time", "runs": {}}
    for variant in variants:
        result = time_recipe(args.recipe, variant, dataset=args.dataset, device=device, epochs=args.epochs,
                             subset=args.subset, seed=args.seed)
        print(f"{args.recipe} {result['variant']}: {result['wall_s']:.1f} s for {result['epochs']} epochs "
              f"(test loss {result['final_test_loss']:.3f})", flush=True)
        results["runs"][f"{args.recipe}: {result['variant']}"] = result
        if path:
            write_json(path, results)
    if path:
        print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
