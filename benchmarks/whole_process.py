"""The whole process: `vae-course train` against a plain PyTorch script, start to finish.

    python -m benchmarks.whole_process                       # 5 interleaved rounds, + a breakdown
    python -m benchmarks.whole_process --baseline main       # also the package as of git rev `main`

A short run is not only training steps: the interpreter starts, torch is imported, the
data are read and decompressed, the test set is evaluated, a checkpoint is written.  This
runs, as separate processes, interleaved (A B, B A, ...) after one untimed warm-up each:

- ``vae-course``: ``python -m vae_course.cli train --recipe matlab-2022 --subset N --epochs E``
  with this checkout's package;
- ``plain``: ``benchmarks/plain_train.py``, the same training as a plain script (torch and
  numpy only);
- ``vae-course@REV`` (``--baseline REV``): the package as it was at git revision REV
  (``git archive``), to measure what the cuts changed;
- floors: ``python -c pass`` and ``python -c "import torch"``.

Then one run of each training command under cProfile gives the breakdown: imports, data
loading, training, test evaluation, checkpoint writing, the rest (shares of the profiled
run; the profiler slows Python-heavy parts, so read them as shares, not times).
"""
from __future__ import annotations

import argparse
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/whole_process.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, hardware, hardware_slug, write_json

ROOT = Path(__file__).resolve().parents[1]

# Breakdown phases: (file name ending, function name) per phase, for each kind of command.
PHASES = {
    "vae-course": {"data loading": ("vae_course/data.py", "load_tensors"),
                   "training": ("vae_course/train.py", "train_one_epoch"),
                   "test evaluation": ("vae_course/evaluate.py", "evaluate_elbo"),
                   "checkpoint writing": ("vae_course/checkpoints.py", "save_checkpoint")},
    "plain": {"data loading": ("plain_train.py", "read_idx_gz"),
              "training": ("plain_train.py", "train_epoch"),
              "test evaluation": ("plain_train.py", "test_epoch"),
              "checkpoint writing": ("plain_train.py", "save_checkpoint")},
}
IMPORTS = ("<frozen importlib._bootstrap>", "_find_and_load")


def commands(args, work: Path, package_roots: dict[str, Path]) -> dict[str, tuple[list[str], dict]]:
    """Each command to time: argv and extra environment.  ``{out}`` is filled in per run."""
    python = sys.executable
    run = ["train", "--recipe", "matlab-2022", "--subset", str(args.subset), "--epochs", str(args.epochs),
           "--no-progress", "--out", "{out}"]
    cmds = {name: ([python, "-m", "vae_course.cli", *run], {"PYTHONPATH": str(root)})
            for name, root in package_roots.items()}
    cmds["plain"] = ([python, str(ROOT / "benchmarks" / "plain_train.py"), "--data", str(args.data),
                      "--subset", str(args.subset), "--epochs", str(args.epochs), "--out", "{out}"], {})
    cmds["python -c pass"] = ([python, "-c", "pass"], {})
    cmds["python -c 'import torch'"] = ([python, "-c", "import torch"], {})
    return cmds


def run(argv: list[str], env: dict, out: Path, profile: Path | None = None) -> float:
    """Wall seconds of one process (a fresh output folder each time)."""
    shutil.rmtree(out, ignore_errors=True)
    argv = [a.replace("{out}", str(out)) for a in argv]
    if profile is not None:
        argv = [argv[0], "-m", "cProfile", "-o", str(profile), *argv[1:]]
    started = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd=out.parent)
    return time.perf_counter() - started


def round_orders(names: list[str], rounds: int) -> list[list[str]]:
    """Interleaving: the names in order, then reversed, and so on, one list per round."""
    return [names if r % 2 == 0 else names[::-1] for r in range(rounds)]


def summarize(walls: dict[str, list[float]], baseline: str, against: list[str]) -> dict[str, Any]:
    """Median wall time per command; per round, baseline time / command time, and its median."""
    out: dict[str, Any] = {name: {"wall_s": [round(w, 3) for w in ws], "median_s": round(statistics.median(ws), 3)}
                           for name, ws in walls.items()}
    for name in against:
        ratios = [b / w for b, w in zip(walls[baseline], walls[name])]
        out[name]["ratio_plain_over_this"] = round(statistics.median(ratios), 3)
        out[name]["ratio_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    return out


def breakdown(profile: Path, phases: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Seconds per phase of a cProfile run (cumulative times), the rest as ``other``."""
    stats = pstats.Stats(str(profile)).stats  # (file, line, function) -> (cc, nc, tt, ct, callers)
    total = max(ct for (_, _, _), (_, _, _, ct, _) in stats.items())

    def cumulative(file_end: str, function: str) -> float:
        return sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                   if name == function and file.replace(os.sep, "/").endswith(file_end))

    seconds = {"imports": cumulative(*IMPORTS)}
    seconds.update({phase: cumulative(*where) for phase, where in phases.items()})
    seconds["other"] = max(total - sum(seconds.values()), 0.0)
    return {"total_s": round(total, 3), **{k: round(v, 3) for k, v in seconds.items()}}


def baseline_package(rev: str, folder: Path) -> Path:
    """The ``vae_course`` package as of git revision ``rev``, extracted into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "vae_course"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.whole_process", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", type=int, default=12_800)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default=None, metavar="REV", help="also time vae_course as of this git revision")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with MNIST's .gz files (default: where vae-course finds them)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile breakdown")
    parser.add_argument("--note", default="", help="conditions of the run worth stating (stored in the JSON)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from vae_course.datasets import dataset_folder
    args.data = args.data or dataset_folder("mnist")
    if args.data is None:
        parser.error("MNIST not found; pass --data DIR or set VAE_COURSE_DATA")
    env_threads = os.environ.get("OMP_NUM_THREADS")

    with tempfile.TemporaryDirectory(prefix="whole-process-") as tmp:
        work = Path(tmp)
        roots = {"vae-course": ROOT}
        if args.baseline:
            roots[f"vae-course@{args.baseline}"] = baseline_package(args.baseline, work / "baseline")
        cmds = commands(args, work, roots)
        names = list(cmds)
        for name in names:  # warm-up: page cache, the decompressed-data cache
            run(*cmds[name], work / "out")
        walls: dict[str, list[float]] = {name: [] for name in names}
        for order in round_orders(names, args.rounds):
            for name in order:
                walls[name].append(run(*cmds[name], work / "out"))
                print(f"{name:28s} {walls[name][-1]:7.2f} s", flush=True)
        profiles = {}
        if not args.no_profile:
            for name in [n for n in names if n in PHASES or n.startswith("vae-course@")]:
                path = work / f"{name}.prof"
                wall = run(*cmds[name], work / "out", profile=path)
                phases = PHASES["plain" if name == "plain" else "vae-course"]
                profiles[name] = {"wall_s_under_profiler": round(wall, 3), **breakdown(path, phases)}

    trainers = [n for n in names if n.startswith("vae-course")]
    result = {
        "benchmark": "whole_process", "note": args.note,
        "command": f"vae-course train --recipe matlab-2022 --subset {args.subset} --epochs {args.epochs}",
        "settings": {"subset": args.subset, "epochs": args.epochs, "rounds": args.rounds,
                     "baseline": args.baseline, "OMP_NUM_THREADS": env_threads},
        "commands": {name: " ".join(argv) for name, (argv, _) in cmds.items()},
        "runs": summarize(walls, "plain", trainers),
        "breakdown": profiles,
        "hardware": hardware(torch.device("cpu")),
    }
    path = args.json or RESULTS / f"whole-process-{hardware_slug(result['hardware'])}.json"
    write_json(path, result)
    for name, r in result["runs"].items():
        ratio = f"  plain/this {r['ratio_plain_over_this']:.2f}" if "ratio_plain_over_this" in r else ""
        print(f"{name:28s} median {r['median_s']:7.2f} s{ratio}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
