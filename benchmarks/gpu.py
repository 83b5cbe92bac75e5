"""Every GPU measurement in one command, for the first machine that has a GPU.

    python -m benchmarks.gpu                          # CUDA (the default device)
    python -m benchmarks.gpu --device mps             # Apple's GPU
    python -m benchmarks.gpu --only recipe_time       # one step again; the summary keeps the others
    python -m benchmarks.gpu --smoke --device cpu     # every step tiny, on any machine (a check of the script)

The steps, in this order, each through the existing command's ``main(argv)`` and each
writing its JSON into ``--out`` (default ``benchmarks/results/``, where the book's
Performance page reads it; ``<hardware>`` names the machine, e.g. ``cuda-nvidia-h100-80gb-hbm3``):

1. ``doctor``: ``vae-course doctor --device D --json`` (does the course compute the same
   numbers on the device as on the CPU?) -> ``doctor-<hardware>.json``;
2. ``recipe_time``: ``benchmarks.recipe_time``, the ``matlab-2022`` recipe's 30 epochs on
   MNIST end to end with the variants ``engine``, ``+bf16``, ``+compile``, ``+cudagraphs`` and
   ``+bf16+cudagraphs`` -> ``recipe-time-<hardware>.json``; the course's target, those 30
   epochs in at most 10 s on an H100-class GPU, is recorded as met or not;
3. ``speed``: ``benchmarks.speed``, engine against the idiomatic loop and the options
   (``+bf16``, ``+compile``, ``+cudagraphs``) on ``matlab-2022``; the other three sources with
   ``idiomatic``, ``engine`` and ``engine+bf16`` (no compiling: cheap) -> ``speed-<hardware>.json``;
4. ``time_to_quality``: ``benchmarks.time_to_quality --device D`` ->
   ``time-to-quality-mnist-<hardware>.json`` (and its samples PNG).

Then ``gpu-<hardware>.json`` says what ran: each step's status, seconds, file, the command
that reproduces it, the variants the device cannot run and why, and the target's verdict.
A step that fails is reported (and its traceback printed) and the next one runs; the exit
status is 1 when any step failed. Variants the device lacks are left out, with the reason:
bf16 where the GPU has no bfloat16 units, ``torch.compile`` without Triton or on MPS, CUDA
graphs off CUDA (and, in a smoke run on the CPU, bf16 and compiling, both slow there).

``--smoke`` runs every step tiny (one epoch on a few hundred images, one step per speed
run, a 512-image time to quality) to check the script, not to measure; its files go to a
fresh temporary folder unless ``--out`` says otherwise, never into ``benchmarks/results/``.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/gpu.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import recipe_time, speed, time_to_quality
from benchmarks.common import RESULTS, hardware, hardware_slug, read_json, write_json
from vae_course import cli
from vae_course.devices import bf16_supported, check_compilable, pick_device
from vae_course.recipes import SOURCE_RECIPES

STEPS = ("doctor", "recipe_time", "speed", "time_to_quality")
RECIPE = "matlab-2022"
TARGET = {"recipe": RECIPE, "dataset": "mnist", "epochs": 30, "seconds": 10.0, "on": "an H100-class GPU",
          "what": "the whole recipe end to end (benchmarks.recipe_time: data to the device, every epoch "
                  "with its test evaluation, compiling and CUDA-graph capture included)"}
RECIPE_VARIANTS = ("engine", "engine+bf16", "engine+compile", "engine+cudagraphs", "engine+bf16+cudagraphs")
SPEED_VARIANTS = ("idiomatic", "engine", "engine+bf16", "engine+compile", "engine+cudagraphs")
OTHER_SOURCES_VARIANTS = ("idiomatic", "engine", "engine+bf16")
SPEED_STEPS = {False: ["--steps", "200", "--repeats", "5"], True: ["--steps", "1", "--repeats", "1"]}
SMOKE = {
    "recipe_time": ["--epochs", "1", "--subset", "256"],
    "time_to_quality": ["--subset", "512", "--a-epochs", "1", "--b-runs", "1", "--b-every", "256",
                        "--iwae-images", "8", "--iwae-k", "4", "--classifier-epochs", "1"],
}


class StepFailed(Exception):
    """A step's command ran but reported failure (a non-zero exit status, failed checks)."""


@dataclass
class Context:
    """What every step needs: the device, where results go, the machine's name, smoke or not."""
    device: torch.device
    out: Path
    slug: str
    smoke: bool
    info: dict[str, Any] = field(default_factory=dict)  # a step's extra facts for the summary

    @property
    def device_name(self) -> str:
        return str(self.device)


# --------------------------------------------------------------------------- variants and the target

def usable_variants(names, device: torch.device, smoke: bool = False) -> tuple[list[str], dict[str, str]]:
    """The variants ``device`` can run, and those it cannot, each with the reason."""
    kept, skipped = [], {}
    for name in names:
        variant = speed.parse_variant(name)
        why = None
        if variant.cudagraphs and device.type != "cuda":
            why = "CUDA graphs exist on CUDA GPUs only"
        elif variant.bf16 and not bf16_supported(device):
            why = f"fit has no bf16 autocast on {device} (a GPU without bfloat16 units, or MPS)"
        elif smoke and device.type == "cpu" and variant.compile:
            why = ("torch.compile compiles C++ for minutes on a CPU: left out of a smoke run there "
                   "(benchmarks.speed --variants engine+compile measures it)")
        elif smoke and device.type == "cpu" and variant.bf16:
            why = ("bf16 autocast is many times slower on a CPU without AMX units: left out of a smoke run "
                   "there (benchmarks.speed --variants engine+bf16 measures it)")
        elif variant.compile or variant.cudagraphs:
            try:
                check_compilable(device, True)
            except ValueError as error:
                why = str(error)
        if why:
            skipped[name] = why
        else:
            kept.append(name)
    return kept, skipped


def target_verdict(runs: dict[str, dict | None], gpu: str) -> dict[str, Any]:
    """Whether ``runs`` (variant -> recipe_time entry) met the target: the full 30 epochs on
    all of MNIST in at most 10 s. Shortened runs (smoke) measure nothing: ``met`` is None."""
    full = {name: run["wall_s"] for name, run in runs.items()
            if run and run["epochs"] == TARGET["epochs"] and run.get("subset") is None
            and run.get("dataset", TARGET["dataset"]) == TARGET["dataset"]}
    verdict: dict[str, Any] = {**TARGET, "gpu": gpu, "wall_s": full}
    if not full:
        verdict.update(met=None, why="no full 30-epoch run of the recipe on all of MNIST in this run: "
                                     "a smoke run, or the step failed")
        return verdict
    best = min(full, key=full.get)
    verdict.update(met=full[best] <= TARGET["seconds"], best_variant=best, best_wall_s=full[best])
    return verdict


def describe_target(verdict: dict[str, Any] | None) -> str:
    if not verdict or verdict.get("met") is None:
        return "not measured" + (f" ({verdict['why']})" if verdict else "")
    return (f"{'met' if verdict['met'] else 'NOT met'}: best {verdict['best_wall_s']:.1f} s "
            f"({verdict['best_variant']}) on {verdict['gpu']}")


# --------------------------------------------------------------------------- the steps

def _command(module: str, argv: list[str]) -> str:
    return f"python -m {module} {shlex.join(argv)}"


def _check_status(module: str, code) -> None:
    if code not in (0, None):
        raise StepFailed(f"{module} exited with status {code}")


def step_doctor(ctx: Context) -> Path:
    path = ctx.out / f"doctor-{ctx.slug}.json"
    argv = ["doctor", "--device", ctx.device_name, "--json"]
    ctx.info["command"] = f"vae-course {shlex.join(argv)}"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(argv)
    text = printed.getvalue()
    try:
        checks = json.loads(text)
    except json.JSONDecodeError:
        raise StepFailed(f"vae-course doctor exited with status {code} and printed no JSON "
                         f"(its message is above){': ' + text[-300:] if text.strip() else ''}") from None
    write_json(path, {"benchmark": "doctor", **checks, "hardware": hardware(ctx.device)})
    if code != 0:
        failed = [c["name"] for c in checks["checks"] if c["ok"] is False]
        raise StepFailed(f"vae-course doctor: {len(failed)} check(s) failed ({', '.join(failed)}); "
                         f"details in {path.name}")
    return path


def step_recipe_time(ctx: Context) -> Path:
    path = ctx.out / f"recipe-time-{ctx.slug}.json"
    variants, skipped = usable_variants(RECIPE_VARIANTS, ctx.device, ctx.smoke)
    argv = ["--recipe", RECIPE, "--dataset", TARGET["dataset"], "--device", ctx.device_name,
            "--variants", *variants, "--json", str(path), *(SMOKE["recipe_time"] if ctx.smoke else [])]
    ctx.info.update(command=_command("benchmarks.recipe_time", argv), skipped_variants=skipped)
    started = hardware(ctx.device)["date"]
    try:
        _check_status("benchmarks.recipe_time", recipe_time.main(argv))
    finally:  # the variants measured before a failure still count
        results = read_json(path) or {"runs": {}}
        runs = {name: results["runs"].get(f"{RECIPE}: {name}") for name in variants}
        runs = {name: run for name, run in runs.items() if run and run["hardware"]["date"] >= started}
        ctx.info["target"] = target_verdict(runs, hardware(ctx.device).get("gpu", ctx.device_name))
    return path


def step_speed(ctx: Context) -> Path:
    path = ctx.out / f"speed-{ctx.slug}.json"
    common = ["--device", ctx.device_name, "--dataset", TARGET["dataset"], *SPEED_STEPS[ctx.smoke],
              "--json", str(path)]
    variants, skipped = usable_variants(SPEED_VARIANTS, ctx.device, ctx.smoke)
    others, skipped_others = usable_variants(OTHER_SOURCES_VARIANTS, ctx.device, ctx.smoke)
    runs = [["--recipe", RECIPE, "--variants", *variants, *common],
            ["--recipe", *(r for r in SOURCE_RECIPES if r != RECIPE), "--variants", *others, *common]]
    ctx.info.update(command=" && ".join(_command("benchmarks.speed", argv) for argv in runs),
                    skipped_variants={**skipped, **skipped_others})
    for argv in runs:
        _check_status("benchmarks.speed", speed.main(argv))
    return path


def step_time_to_quality(ctx: Context) -> Path:
    path = ctx.out / f"time-to-quality-mnist-{ctx.slug}.json"
    argv = ["--device", ctx.device_name, "--json", str(path), *(SMOKE["time_to_quality"] if ctx.smoke else [])]
    ctx.info["command"] = _command("benchmarks.time_to_quality", argv)
    _check_status("benchmarks.time_to_quality", time_to_quality.main(argv))
    return path


STEP_FUNCTIONS: dict[str, Callable[[Context], Path]] = {
    "doctor": step_doctor, "recipe_time": step_recipe_time, "speed": step_speed,
    "time_to_quality": step_time_to_quality,
}


def _release(device: torch.device) -> None:
    """Between steps: forget compiled graphs (each step compiles as a user would) and cached memory."""
    import torch._dynamo

    gc.collect()
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_step(name: str, ctx: Context) -> dict[str, Any]:
    """One step; its record for the summary. A failure is recorded, never raised."""
    ctx.info = {}
    started = time.perf_counter()
    record: dict[str, Any] = {"status": "ok"}
    try:
        path = STEP_FUNCTIONS[name](ctx)
        record["file"] = path.name
    except StepFailed as error:
        record.update(status="failed", error=str(error))
    except SystemExit as error:  # argparse refused the arguments (its message is above)
        record.update(status="failed", error=f"the command's arguments were refused (exit status {error.code})")
    except Exception as error:  # noqa: BLE001 - reported, and the next step runs
        traceback.print_exc()
        record.update(status="failed", error=f"{type(error).__name__}: {error}")
    finally:
        record["seconds"] = round(time.perf_counter() - started, 1)
        record.update(ctx.info)
        try:
            _release(ctx.device)
        except Exception as error:  # noqa: BLE001 - e.g. a CUDA context broken by the step: the next steps say so
            print(f"benchmarks.gpu: releasing memory after {name} failed: {type(error).__name__}: {error}",
                  file=sys.stderr)
    return record


# --------------------------------------------------------------------------- the command

def refusal(device: str, smoke: bool) -> str | None:
    """Why this machine cannot run the script with ``--device device`` (None: it can)."""
    fix = ("Run it on a machine with a GPU (an NVIDIA GPU and a CUDA build of torch: --device cuda; "
           "a Mac: --device mps). To check the script on this machine: python -m benchmarks.gpu --smoke "
           "--device cpu")
    try:
        chosen = pick_device(device)
    except ValueError as error:  # pick_device's own advice (device='auto' or 'cpu') does not apply here
        return f"--device {device}: {str(error).split('; use device=')[0]}. {fix}"
    if chosen.type == "cpu" and not smoke:
        return (f"--device {device} is the CPU: this script measures a GPU. The CPU's numbers come from the "
                f"benchmarks run one by one (benchmarks/README.md); --device cpu is for --smoke. {fix}")
    return None


def summarize(path: Path, ctx: Context, records: dict[str, dict], argv: list[str]) -> dict[str, Any]:
    """The summary file: this run's steps over those of an earlier run of the same kind."""
    previous = read_json(path) or {}
    steps = previous.get("steps", {}) if previous.get("smoke") == ctx.smoke else {}
    steps.update(records)
    target = records.get("recipe_time", {}).pop("target", None) or previous.get("target")
    summary = {"benchmark": "gpu", "smoke": ctx.smoke, "device": ctx.device_name,
               "command": _command("benchmarks.gpu", argv), "hardware": hardware(ctx.device),
               "steps": {name: steps[name] for name in STEPS if name in steps},
               "failed": [name for name in STEPS if steps.get(name, {}).get("status") == "failed"],
               "target": target}
    write_json(path, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("--device", default="cuda",
                        help="cuda (the default), cuda:N or mps; cpu only with --smoke")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where the JSON files go (default benchmarks/results/; with --smoke a fresh "
                             "temporary folder)")
    parser.add_argument("--only", nargs="+", choices=STEPS, default=None, metavar="STEP",
                        help=f"run these steps only ({', '.join(STEPS)}); the summary keeps the others' records")
    parser.add_argument("--smoke", action="store_true",
                        help="every step tiny (a check of the script; measures nothing)")
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)

    why_not = refusal(args.device, args.smoke)
    if why_not:
        print(f"benchmarks.gpu: {why_not}", file=sys.stderr)
        return 2
    if args.smoke and args.out is not None and args.out.resolve() == RESULTS.resolve():
        print("benchmarks.gpu: --smoke measures nothing, and its files would merge into the published ones "
              "in benchmarks/results/; choose another --out (or none: a temporary folder)", file=sys.stderr)
        return 2
    device = pick_device(args.device)
    out = args.out or (Path(tempfile.mkdtemp(prefix="vae-course-gpu-smoke-")) if args.smoke else RESULTS)
    info = hardware(device)
    ctx = Context(device, out, hardware_slug(info), args.smoke)
    steps = [s for s in STEPS if not args.only or s in args.only]
    print(f"benchmarks.gpu{' (smoke run)' if args.smoke else ''} on {info.get('gpu', device)}: "
          f"{', '.join(steps)}; results in {out}", flush=True)

    records: dict[str, dict] = {}
    summary_path = out / f"gpu-{ctx.slug}.json"
    try:
        for number, name in enumerate(steps, 1):
            print(f"\n== step {number}/{len(steps)}: {name}", flush=True)
            records[name] = run_step(name, ctx)
            record = records[name]
            print(f"== {name}: {record['status']} in {record['seconds']:.0f} s"
                  + (f": {record['error']}" if record["status"] == "failed" else ""), flush=True)
    finally:  # interrupted too: what ran is recorded
        summary = summarize(summary_path, ctx, records, argv)

    failed = [name for name, record in records.items() if record["status"] == "failed"]
    print(f"\nbenchmarks.gpu on {info.get('gpu', device)}{' (smoke run)' if args.smoke else ''}:")
    for name, record in records.items():
        where = record.get("file") or record.get("error", "")
        print(f"  {name:16s} {record['status']:7s} {record['seconds']:7.0f} s  {where}")
    if "recipe_time" in records:
        print(f"target ({RECIPE}, {TARGET['epochs']} epochs on MNIST in <= {TARGET['seconds']:.0f} s): "
              f"{describe_target(summary['target'])}")
    print(f"failed steps: {', '.join(failed)} (rerun them with --only {' '.join(failed)})" if failed
          else "every step ran")
    print(f"summary: {summary_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
