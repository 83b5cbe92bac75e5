"""Do fit's speed options train the same model?  A check before switching a default.

Trains one recipe for a few epochs on a subset with plain float32 for several seeds (the
seed-to-seed spread is the yardstick) and with each option at the first seed, then compares
the final train and test losses and the test-loss curve:

    python -m benchmarks.numerics --recipe matlab-2022 --epochs 3 --subset 5000 --seeds 3

An option passes when its final losses lie within the float32 runs' seed-to-seed range
(widened by half that range on each side), i.e. it changes the result less than the choice of seed does.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/numerics.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, hardware, hardware_slug, read_json, write_json
from vae_course.recipes import get_recipe
from vae_course.devices import pick_device
from vae_course.train import train_recipe

OPTIONS = ("channels_last", "bf16", "compile")


def run(recipe: str, *, epochs: int, subset: int, seed: int, device: torch.device,
        options: dict[str, bool]) -> dict[str, Any]:
    _, history = train_recipe(recipe, dataset="fashion-mnist", epochs=epochs, subset=subset, device=device,
                              progress=False, seed=seed,
                              **{"torch_compile" if k == "compile" else k: v for k, v in options.items()})
    last = history.epochs[-1]
    return {"seed": seed, "options": options, "train_loss": last["train_loss"], "test_loss": last["test_loss"],
            "test_loss_per_epoch": [r["test_loss"] for r in history.epochs],
            "seconds": round(sum(r["seconds"] for r in history.epochs), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.numerics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="matlab-2022")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=5000, metavar="N")
    parser.add_argument("--seeds", type=int, default=3, help="float32 runs, seeds 0..N-1 (default 3)")
    parser.add_argument("--options", nargs="+", default=["channels_last", "bf16", "channels_last+bf16"],
                        help="option sets to check, e.g. channels_last+bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="default benchmarks/results/numerics-<hardware>.json (merged by recipe)")
    args = parser.parse_args(argv)
    get_recipe(args.recipe)
    option_sets = []
    for text in args.options:
        names = text.split("+")
        unknown = sorted(set(names) - set(OPTIONS))
        if unknown:
            parser.error(f"unknown option(s) {', '.join(unknown)}; choose from {', '.join(OPTIONS)}")
        option_sets.append({"channels_last": False, **{name: True for name in names}})
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    common = dict(epochs=args.epochs, subset=args.subset, device=device)

    baseline = []
    for seed in range(args.seeds):
        # the reference: float32 in the default (contiguous) memory layout, no speed option at all
        baseline.append(run(args.recipe, seed=seed, options={"channels_last": False}, **common))
        print(f"float32 seed {seed}: train {baseline[-1]['train_loss']:.4f} test {baseline[-1]['test_loss']:.4f}",
              flush=True)
    spread = {}
    for key in ("train_loss", "test_loss"):
        values = [r[key] for r in baseline]
        width = max(values) - min(values)
        spread[key] = [min(values) - width / 2, max(values) + width / 2]
    checked = []
    for options in option_sets:
        result = run(args.recipe, seed=0, options=options, **common)
        result["difference_from_seed_0"] = {k: result[k] - baseline[0][k] for k in ("train_loss", "test_loss")}
        result["within_seed_spread"] = all(lo <= result[k] <= hi for k, (lo, hi) in spread.items())
        checked.append(result)
        name = "+".join(k for k, v in options.items() if v)
        print(f"{name}: train {result['train_loss']:.4f} test {result['test_loss']:.4f} "
              f"(seed-0 float32: {baseline[0]['train_loss']:.4f} / {baseline[0]['test_loss']:.4f}; "
              f"within the seed spread: {result['within_seed_spread']})", flush=True)

    info = {**hardware(device)}
    path = args.json or RESULTS / f"numerics-{hardware_slug(info)}.json"
    results = read_json(path) or {"benchmark": "numerics", "runs": {}}
    results["runs"][args.recipe] = {"epochs": args.epochs, "subset": args.subset, "float32": baseline,
                                    "float32_spread": spread, "options": checked, "hardware": info}
    write_json(path, results)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
