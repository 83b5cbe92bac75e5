"""Training speed: vae_course's engine (``vae_course.train.fit``) next to an idiomatic PyTorch loop.

Both train the same model (same initial weights), with the same loss and the same Adam
learning rate, on the same images, for a fixed number of steps.  The runs are interleaved
(A B, B A, A B, ...) so that whatever else the machine is doing slows both alike; the
report gives medians and, per round, the ratio of the two times.

    python -m benchmarks.speed --recipe matlab-2022                 # engine vs idiomatic
    python -m benchmarks.speed --recipe all --threads 1
    python -m benchmarks.speed --recipe matlab-2022 --variants engine engine+channels_last engine+bf16
    python -m benchmarks.speed --report benchmarks/results/speed-*.json   # markdown tables

A variant is ``idiomatic`` or ``engine`` plus options joined by ``+``: ``channels_last``,
``contiguous`` (channels_last off: ``engine+contiguous`` is the engine before it became
``fit``'s default on the CPU), ``bf16`` (bfloat16 autocast), ``compile`` (``torch.compile``),
``cudagraphs`` (``torch.compile(mode="reduce-overhead")``, which replays CUDA graphs on a GPU),
``threads=N``.  Plain ``engine`` is ``fit`` with its defaults.  The first
variant is the baseline of the speed-ups.

The idiomatic loop is what pytorch/examples' ``vae/main.py`` does: a ``Dataset`` that
converts one uint8 image at a time to a float tensor in [0, 1] (like torchvision's
``ToTensor``, minus the PIL round trip, so it is the faster case), a
``DataLoader(batch_size, shuffle=True)``, ``model.train()``, ``optimizer.zero_grad()``,
``loss.backward()``, ``optimizer.step()`` and ``loss.item()`` every step, with
``torch.optim.Adam(model.parameters(), lr)`` in its default implementation.  The engine
slices batches out of tensors that are already resident (``vae_course.data.Batches``).
"""
from __future__ import annotations

import argparse
import ctypes
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

if __package__ in (None, ""):  # run as a script: python benchmarks/speed.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, hardware, hardware_slug, read_json, synchronize, write_json
from benchmarks.flops import training_flops_per_image
from benchmarks.report import speed_markdown
from vae_course import data
from vae_course.datasets import DATASETS
from vae_course.losses import elbo_terms
from vae_course.models import build_model
from vae_course.recipes import SOURCE_RECIPES, get_recipe
from vae_course.devices import pick_device
from vae_course.train import fit

LOOPS = ("idiomatic", "engine")
OPTIONS = ("channels_last", "bf16", "compile", "cudagraphs")
FULL_TRAIN_SET = 60_000  # images per epoch of MNIST and Fashion-MNIST


# --------------------------------------------------------------------------- variants

@dataclass(frozen=True)
class Variant:
    """One way of training: which loop, and which speed options."""
    loop: str
    channels_last: bool | None = None  # None: what fit does by default (on for conv models on the CPU)
    bf16: bool = False
    compile: bool = False
    cudagraphs: bool = False  # torch.compile(mode="reduce-overhead"): CUDA graphs on a GPU
    threads: int | None = None

    @property
    def name(self) -> str:
        options = [o for o in OPTIONS if getattr(self, o)]
        if self.channels_last is False:
            options.insert(0, "contiguous")
        if self.threads is not None:
            options.append(f"threads={self.threads}")
        return "+".join([self.loop, *options])


def parse_variant(text: str) -> Variant:
    """``"engine+channels_last+threads=1"`` -> ``Variant("engine", channels_last=True, threads=1)``."""
    loop, *options = text.split("+")
    if loop not in LOOPS:
        raise ValueError(f"variant {text!r}: start with one of {', '.join(LOOPS)}")
    settings: dict[str, Any] = {}
    for option in options:
        if option in OPTIONS:
            settings[option] = True
        elif option == "contiguous":
            settings["channels_last"] = False
        elif re.fullmatch(r"threads=[1-9][0-9]*", option):
            settings["threads"] = int(option.split("=")[1])
        else:
            raise ValueError(f"variant {text!r}: unknown option {option!r}; options are "
                             f"{', '.join(OPTIONS)}, contiguous, threads=N")
    return Variant(loop, **settings)


# --------------------------------------------------------------------------- the idiomatic loop

class ImageDataset(Dataset):
    """uint8 images converted one at a time, as a torchvision dataset with ``ToTensor()`` does."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, binarize: str = "none"):
        self.images, self.labels, self.binarize = images, labels, binarize

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[index]).unsqueeze(0).float().div(255)  # (1, 28, 28) in [0, 1]
        if self.binarize == "static":
            x = (x > 0.5).float()
        elif self.binarize == "dynamic":
            x = torch.bernoulli(x)
        return x, int(self.labels[index])


def train_idiomatic(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, *, recipe,
                    epochs: int, device: torch.device, variant: Variant, step_model=None,
                    seed: int = 0, after_epoch=None) -> float:
    """Train as pytorch/examples does; return the last epoch's mean training loss.

    ``after_epoch(epoch)``, if given, is called after each epoch (1-based); returning True
    stops training there (benchmarks/time_to_quality.py scores the model at that point).
    """
    torch.manual_seed(seed)
    on_gpu = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}  # as pytorch/examples
    loader = DataLoader(ImageDataset(images, labels, recipe.binarize), batch_size=recipe.batch_size,
                        shuffle=True, drop_last=recipe.drop_last, **on_gpu)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    loss_kwargs = dict(reconstruction=recipe.reconstruction, kl=recipe.kl, beta=recipe.beta,
                       sigma=recipe.sigma)
    if variant.channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = step_model or model
    mean_loss = math.nan
    for epoch in range(1, epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for x, _ in loader:
            x = x.to(device)
            optimizer.zero_grad()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant.bf16):
                out = step_model(x)
            out = type(out)(*(t.float() for t in out))
            loss = elbo_terms(out, x, **loss_kwargs).loss.mean()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
            seen += len(x)
        mean_loss = total / seen
        if after_epoch is not None and after_epoch(epoch):
            break
    if variant.channels_last:
        model.to(memory_format=torch.contiguous_format)
    return mean_loss


# --------------------------------------------------------------------------- measuring

def _proc_status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _release_freed_memory() -> None:
    """Hand memory that was freed but kept by glibc's malloc back to the OS (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of a block: CUDA's allocator peak on a GPU; on Linux CPUs the peak resident
    set size above its value when the block started (freed memory is first returned to the
    OS, then ``/proc/self/clear_refs`` resets the peak).  Data loaded before the block (the
    training images) is not counted."""

    def __init__(self, device: torch.device):
        self.device, self.mib = device, None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            _release_freed_memory()
            try:
                Path("/proc/self/clear_refs").write_text("5")
                self.start = _proc_status_kib("VmRSS")
            except OSError:
                self.start = None
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        elif self.start is not None:
            peak = _proc_status_kib("VmHWM")
            self.mib = None if peak is None else (peak - self.start) / 1024


@dataclass
class Workload:
    """One recipe's model, data and settings, shared by all variants."""
    recipe: Any
    images: np.ndarray      # uint8 (N, 28, 28), for the idiomatic loop
    labels: np.ndarray
    x: torch.Tensor         # float32 (N, 1, 28, 28) on the device, for the engine
    epochs: int
    device: torch.device
    initial_state: dict
    seed: int = 0


def compile_setting(variant: Variant) -> bool | str:
    """What the variant passes as fit's ``compile``: a torch.compile mode for ``cudagraphs``."""
    return "reduce-overhead" if variant.cudagraphs else variant.compile


def run_once(variant: Variant, model: torch.nn.Module, work: Workload, compiled: dict,
             default_threads: int) -> dict[str, float | None]:
    """Train ``model`` from the workload's initial weights once; wall and CPU seconds, loss, memory."""
    torch.set_num_threads(variant.threads or default_threads)
    model.load_state_dict(work.initial_state)
    r = work.recipe
    synchronize(work.device)
    with PeakMemory(work.device) as memory:
        wall, cpu = time.perf_counter(), time.process_time()
        if variant.loop == "engine":
            history = fit(model, work.x, epochs=work.epochs, batch_size=r.batch_size, lr=r.lr,
                          reconstruction=r.reconstruction, kl=r.kl, beta=r.beta, sigma=r.sigma,
                          binarize=r.binarize, drop_last=r.drop_last, device=work.device,
                          seed=work.seed, bf16=variant.bf16, torch_compile=compile_setting(variant),
                          channels_last=variant.channels_last, progress=False)
            loss = history.epochs[-1]["train_loss"]
        else:
            mode = compile_setting(variant)
            if mode and variant not in compiled:
                compiled[variant] = torch.compile(model, mode=None if mode is True else mode)
            loss = train_idiomatic(model, work.images, work.labels, recipe=r, epochs=work.epochs,
                                   device=work.device, variant=variant, step_model=compiled.get(variant),
                                   seed=work.seed)
        synchronize(work.device)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "loss": loss, "peak_mib": memory.mib}


def steps_per_run(work: Workload) -> int:
    n, b = len(work.images), work.recipe.batch_size
    return work.epochs * (n // b if work.recipe.drop_last else math.ceil(n / b))


def profile_variant(variant: Variant, model, work: Workload, compiled: dict, default_threads: int,
                    top: int = 15) -> list[dict]:
    """The ops that take the most time in one run of ``variant`` (torch.profiler, self time)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if work.device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        run_once(variant, model, work, compiled, default_threads)
    steps = steps_per_run(work)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    rows = []
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]:
        rows.append({"op": e.key, "input_shapes": str(e.input_shapes)[:120],
                     "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1000 / steps, 3),
                     "percent": round(100 * e.self_cpu_time_total / total, 1),
                     "calls_per_step": round(e.count / steps, 2)})
    return rows


def benchmark_recipe(recipe_name: str, variants: list[Variant], *, dataset: str, steps: int,
                     subset: int | None, epochs: int, repeats: int, device: torch.device,
                     default_threads: int, profile: bool = False, seed: int = 0) -> dict[str, Any]:
    """Interleaved runs of every variant on one recipe; medians, paired speed-ups, FLOP/s."""
    recipe = get_recipe(recipe_name)
    n = subset if subset is not None else steps * recipe.batch_size
    images, labels = data.load_split(dataset, "train")
    if n > len(images):
        raise ValueError(f"--subset/--steps ask for {n} images; {dataset} has {len(images)}")
    images, labels = images[:n], labels[:n]
    x, _ = data.load_tensors(dataset, "train", device=device, subset=n)
    torch.manual_seed(seed)
    model0 = build_model(recipe.arch, **recipe.model_kwargs)
    flops = training_flops_per_image(model0, torch.zeros(1, 1, 28, 28))
    work = Workload(recipe, images, labels, x, epochs, device,
                    {k: v.clone() for k, v in model0.state_dict().items()}, seed)
    models = {v: build_model(recipe.arch, **recipe.model_kwargs).to(device) for v in variants}
    compiled: dict = {}
    steps_run = steps_per_run(work)
    full_steps = FULL_TRAIN_SET // recipe.batch_size if recipe.drop_last else math.ceil(FULL_TRAIN_SET / recipe.batch_size)

    runs: dict[Variant, list[dict]] = {v: [] for v in variants}
    warmup = {v: run_once(v, models[v], work, compiled, default_threads)["wall"]  # allocator, oneDNN
              for v in variants}                                                   # kernels, compiling
    for r in range(repeats):
        order = variants if r % 2 == 0 else variants[::-1]
        for v in order:
            runs[v].append(run_once(v, models[v], work, compiled, default_threads))
        times = "  ".join(f"{v.name} {runs[v][-1]['wall'] / steps_run * 1000:.1f}" for v in variants)
        print(f"  {recipe_name} round {r + 1}/{repeats}: ms/step {times}", file=sys.stderr, flush=True)

    base = variants[0]
    rows = []
    for v in variants:
        wall = [run["wall"] / steps_run for run in runs[v]]
        cpu = [run["cpu"] / steps_run for run in runs[v]]
        speedup_wall = [b["wall"] / run["wall"] for b, run in zip(runs[base], runs[v])]
        speedup_cpu = [b["cpu"] / run["cpu"] for b, run in zip(runs[base], runs[v])]
        median_wall = statistics.median(wall)
        images_per_s = recipe.batch_size / median_wall
        peaks = [run["peak_mib"] for run in runs[v] if run["peak_mib"] is not None]
        rows.append({
            "variant": v.name,
            "threads": v.threads or default_threads,
            "warmup_run_s": round(warmup[v], 2),  # the first run: includes torch.compile's compiling
            "wall_s_per_step": [round(t, 5) for t in wall],
            "median_wall_s_per_step": round(median_wall, 5),
            "median_cpu_s_per_step": round(statistics.median(cpu), 5),
            "s_per_epoch": round(median_wall * full_steps, 2),
            "images_per_s": round(images_per_s, 1),
            "gflop_per_s": round(images_per_s * flops / 1e9, 2),
            "speedup": round(statistics.median(speedup_wall), 3),
            "speedup_range": [round(min(speedup_wall), 3), round(max(speedup_wall), 3)],
            "speedup_cpu_time": round(statistics.median(speedup_cpu), 3),
            "speedup_cpu_time_range": [round(min(speedup_cpu), 3), round(max(speedup_cpu), 3)],
            "peak_memory_mib": round(max(peaks), 1) if peaks else None,
            "train_loss": round(statistics.median(run["loss"] for run in runs[v]), 4),
        })
    result = {
        "recipe": recipe_name,
        "arch": recipe.arch,
        "batch_size": recipe.batch_size,
        "dataset": dataset,
        "images_per_run": n,
        "steps_per_run": steps_run,
        "steps_per_full_epoch": full_steps,
        "repeats": repeats,
        "training_flops_per_image": flops,
        "baseline": base.name,
        "resident_data_mib_full_epoch": {  # what each loop keeps in memory for 60 000 images
            "engine": round(FULL_TRAIN_SET * 28 * 28 * 4 / 2**20, 1),  # float32 tensor
            "idiomatic": round(FULL_TRAIN_SET * 28 * 28 / 2**20, 1),    # uint8 array
        },
        "variants": rows,
    }
    if profile:
        result["profile"] = {v.name: profile_variant(v, models[v], work, compiled, default_threads)
                             for v in variants}
    return result


# --------------------------------------------------------------------------- reporting

def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of one recipe's variants."""
    lines = [f"{result['recipe']} (batch {result['batch_size']}, {result['steps_per_run']} steps x "
             f"{result['repeats']} interleaved runs, {result['training_flops_per_image'] / 1e6:.1f} "
             f"MFLOP/image to train)",
             f"  {'variant':34s} {'ms/step':>8s} {'s/epoch':>8s} {'img/s':>7s} {'GFLOP/s':>8s} "
             f"{'speed-up (range)':>18s} {'cpu ms':>7s} {'cpu speed-up':>19s} {'peak MiB':>8s} {'loss':>9s}"]
    for row in result["variants"]:
        lo, hi = row["speedup_range"]
        clo, chi = row["speedup_cpu_time_range"]
        peak = "-" if row["peak_memory_mib"] is None else f"{row['peak_memory_mib']:.0f}"
        lines.append(f"  {row['variant']:34s} {row['median_wall_s_per_step'] * 1000:8.1f} "
                     f"{row['s_per_epoch']:8.1f} {row['images_per_s']:7.0f} {row['gflop_per_s']:8.2f} "
                     f"{row['speedup']:5.2f}x ({lo:.2f}-{hi:.2f}) {row['median_cpu_s_per_step'] * 1000:7.1f} "
                     f"{row['speedup_cpu_time']:5.2f}x ({clo:.2f}-{chi:.2f}) {peak:>8s} {row['train_loss']:9.3f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", nargs="+", default=["matlab-2022"],
                        help="recipe name(s), or 'all' for the four sources (default matlab-2022)")
    parser.add_argument("--variants", nargs="+", default=["idiomatic", "engine"],
                        help="ways of training to compare; the first is the baseline (default: idiomatic engine)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run (default 20)")
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="train on the first N images instead (overrides --steps)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over those images per run (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each variant (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for every variant (default: torch's default)")
    parser.add_argument("--dataset", default="fashion-mnist", choices=sorted(DATASETS))
    parser.add_argument("--profile", action="store_true", help="also record the top ops of each variant")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="results file (default benchmarks/results/speed-<hardware>.json); "
                             "runs are merged into it by recipe and variants")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="print markdown tables of a results file and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.report is not None:
        print(speed_markdown(read_json(args.report)))
        return 0
    variants = [parse_variant(v) for v in args.variants]
    if len(set(variants)) != len(variants):
        parser.error("--variants lists the same variant twice")
    recipes = list(SOURCE_RECIPES) if args.recipe == ["all"] else args.recipe
    for name in recipes:
        get_recipe(name)  # unknown names fail before any timing
    if min(args.steps, args.epochs, args.repeats) < 1:
        parser.error("--steps, --epochs and --repeats must be at least 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    default_threads = torch.get_num_threads()
    device = pick_device(args.device)

    info = hardware(device)
    path = args.json or RESULTS / f"speed-{hardware_slug(info)}.json"
    results = read_json(path) or {"benchmark": "speed", "runs": {}}
    for name in recipes:
        result = benchmark_recipe(name, variants, dataset=args.dataset, steps=args.steps, subset=args.subset,
                                  epochs=args.epochs, repeats=args.repeats, device=device,
                                  default_threads=default_threads, profile=args.profile)
        result["hardware"] = {**hardware(device), "torch_threads": default_threads}
        print(format_table(result), flush=True)
        if args.profile:
            for variant, rows in result["profile"].items():
                print(f"  top ops, {variant} (self CPU time per step):")
                for row in rows[:10]:
                    print(f"    {row['self_cpu_ms_per_step']:8.2f} ms {row['percent']:5.1f}%  {row['op']:32s} "
                          f"{row['input_shapes'][:70]}")
        key = f"{name}: {' vs '.join(v.name for v in variants)} (threads={default_threads})"
        results["runs"][key] = result
        results["hardware"] = result["hardware"]
        write_json(path, results)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
