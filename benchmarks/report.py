"""Tables and plots of the benchmark results, for the book's Performance and Reproducing pages.

Everything here reads the JSON files that ``benchmarks.speed`` and ``benchmarks.quality``
write (``benchmarks/results/``), so a number on a page is always a number from a file.
"""
from __future__ import annotations

import re
from typing import Any

YARDSTICKS = (  # (key, label); lower is better for all three
    ("reconstruction_mse", "reconstruction MSE"),
    ("frechet_distance", "Fréchet distance"),
    ("iwae_nll_nats", "IWAE NLL (nats)"),
)


# --------------------------------------------------------------------------- speed

def short_shapes(text: str, keep: int = 3) -> str:
    """``"[[128, 32, 28, 28], [64, 32, 3, 3], [], []]"`` -> ``"[128, 32, 28, 28], [64, 32, 3, 3]"``:
    the first ``keep`` non-empty input shapes of a profiler row."""
    shapes = [s for s in re.findall(r"\[([^\[\]]*)\]", text) if s.strip()]
    return ", ".join(f"[{s}]" for s in shapes[:keep])


def speed_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (run, variant): recipe, variant, threads, s/epoch, images/s, GFLOP/s, speed-up."""
    rows = []
    for title, run in results["runs"].items():
        for v in run["variants"]:
            rows.append({"run": title, "recipe": run["recipe"], "batch_size": run["batch_size"],
                         "variant": v["variant"], "baseline": run["baseline"], "threads": v["threads"],
                         "s_per_epoch": v["s_per_epoch"], "images_per_s": v["images_per_s"],
                         "gflop_per_s": v["gflop_per_s"], "peak_memory_mib": v["peak_memory_mib"],
                         "speedup": v["speedup"], "speedup_range": v["speedup_range"],
                         "load_average": run["hardware"].get("load_average_1min")})
    return rows


def speed_markdown(results: dict[str, Any]) -> str:
    """A markdown table of every variant of every run, speed-ups against each run's baseline."""
    lines = ["| recipe, batch | variant, threads | s / epoch | images / s | GFLOP/s | peak MiB | speed-up (range) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in speed_rows(results):
        low, high = r["speedup_range"]
        speedup = "baseline" if r["variant"] == r["baseline"] else f"{r['speedup']:.2f}x ({low:.2f}-{high:.2f})"
        peak = "–" if r["peak_memory_mib"] is None else f"{r['peak_memory_mib']:.0f}"
        lines.append(f"| {r['recipe']}, {r['batch_size']} | {r['variant']}, {r['threads']} | {r['s_per_epoch']:.1f} | "
                     f"{r['images_per_s']:.0f} | {r['gflop_per_s']:.1f} | {peak} | {speedup} |")
    return "\n".join(lines)


def plot_speedups(results: dict[str, Any], ax) -> None:
    """Horizontal bars: the speed-up of every non-baseline variant, one group per run."""
    labels, values, errors = [], [], [[], []]
    for r in speed_rows(results):
        if r["variant"] == r["baseline"]:
            continue
        low, high = r["speedup_range"]
        labels.append(f"{r['recipe']}: {r['variant']} vs {r['baseline']}")
        values.append(r["speedup"])
        errors[0].append(max(r["speedup"] - low, 0.0))
        errors[1].append(max(high - r["speedup"], 0.0))
    ys = range(len(values))
    ax.barh(list(ys), values, xerr=errors, color="tab:blue", alpha=0.8, capsize=3)
    ax.axvline(1.0, color="black", lw=1)
    ax.axvline(2.0, color="tab:red", ls="--", lw=1, label="target: 2x the idiomatic loop")
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up (median of interleaved rounds; bars: range)")
    ax.set_title("Training speed against each run's baseline")
    ax.legend(loc="lower right", fontsize=8)


# --------------------------------------------------------------------------- quality

def yardstick(result: dict[str, Any], key: str) -> float | None:
    """The value of one yardstick of a scored model (``None`` where it does not apply)."""
    entry = result.get(key)
    if entry is None:
        return None
    return float(entry["mean"] if key == "reconstruction_mse" else entry["value"])


def course_points(results: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The course recipe scored after each milestone epoch and at its full length: {epochs: result}."""
    points = {int(e): r for e, r in results.get("milestones", {}).get("course", {}).items()}
    if "course" in results.get("recipes", {}):
        final = results["recipes"]["course"]
        points[int(final["epochs"])] = final
    return dict(sorted(points.items()))


def budget_matched(results: dict[str, Any]) -> list[dict[str, Any]]:
    """For every source recipe: the course at an equal or smaller training budget, and who wins.

    The budget is training FLOPs (analytic FLOPs per image x images seen).  The course point is
    the longest one (milestone or full run) whose budget is at most the source's.  Where even
    the cheapest course point costs more FLOPs than the whole source run (a tiny MLP), the
    comparison takes that cheapest point, which is still within the source's budget in
    images seen (epochs), and says so in ``basis``.
    """
    points = course_points(results)
    rows = []
    for name, source in results.get("recipes", {}).items():
        if name == "course" or not points:
            continue
        by_flops = [e for e, p in points.items() if p["train_tflop"] <= source["train_tflop"]]
        by_epochs = [e for e in points if e <= source["epochs"]]
        if by_flops:
            basis, epochs = "training FLOPs", max(by_flops)
        elif by_epochs:
            basis, epochs = "images seen (more FLOPs)", min(by_epochs)
        else:
            continue
        course = points[epochs]
        compared = {}
        for key, label in YARDSTICKS:
            a, b = yardstick(course, key), yardstick(source, key)
            if a is not None and b is not None:
                compared[label] = {"course": a, "source": b, "course_better": a < b}
        rows.append({"source": name, "source_epochs": source["epochs"], "source_tflop": source["train_tflop"],
                     "course_epochs": course["epochs"], "course_tflop": course["train_tflop"], "basis": basis,
                     "yardsticks": compared,
                     "course_wins": bool(compared) and all(c["course_better"] for c in compared.values())})
    return rows


def budget_markdown(results: dict[str, Any]) -> str:
    """The budget-matched comparison as a markdown table."""
    lines = ["| source (epochs, TFLOP) | course (epochs, TFLOP) | matched on | "
             "MSE, course / source | FD, course / source | IWAE NLL, course / source | course better |",
             "|---|---|---|---|---|---|---|"]
    for row in budget_matched(results):
        cells = []
        for _, label in YARDSTICKS:
            c = row["yardsticks"].get(label)
            digits = 4 if label.startswith("reconstruction") else 2
            cells.append("–" if c is None else f"{c['course']:.{digits}f} / {c['source']:.{digits}f}")
        lines.append(f"| `{row['source']}` ({row['source_epochs']}, {row['source_tflop']:.1f}) | "
                     f"{row['course_epochs']}, {row['course_tflop']:.1f} | {row['basis']} | "
                     f"{' | '.join(cells)} | {'yes' if row['course_wins'] else 'no'} |")
    return "\n".join(lines)


def plot_test_loss_curves(results: dict[str, Any], axes) -> None:
    """One panel per recipe: its own test loss after every epoch (units differ between recipes)."""
    recipes = results.get("recipes", {})
    for ax, (name, r) in zip(axes, recipes.items()):
        losses = r["test_loss_per_epoch"]
        ax.plot(range(1, len(losses) + 1), losses, marker="o" if len(losses) <= 12 else None, ms=3)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test loss (its source's units)")
        ax.grid(alpha=0.3)
    for ax in list(axes)[len(recipes):]:
        ax.set_visible(False)


def quality_missing(results: dict[str, Any], expected: tuple[str, ...]) -> list[str]:
    """Recipes the quality file does not have yet (a run still in progress or never started)."""
    return [name for name in expected if name not in results.get("recipes", {})]


# --------------------------------------------------------------------------- IWAE anchor

def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (no pipes, no line breaks)."""
    return str(text).replace("|", "/").replace("\n", " ")


def _elbo_cells(elbo: dict[str, Any]) -> str:
    whole = f"{elbo['negative_elbo_nats']:.2f}"
    same = elbo.get("on_iwae_images")
    return whole if same is None else f"{same:.2f} / {whole}"


def iwae_anchor_table(results: dict[str, Any]) -> str:
    """The IWAE anchor (``benchmarks/iwae_anchor.py``) as a markdown table: each model measured
    here (epochs and training time, k, test images, NLL ± standard error, -ELBO, the published
    values, every protocol difference), then the published rows themselves."""
    published = results.get("published", {})
    refs = "; ".join(f"{p['value_nats']:.2f} ({'Burda et al. 2016' if key == 'burda2016' else key})"
                     for key, p in published.items())
    lines = ["| model | training | k | test images | NLL ± s.e. (nats) | "
             "-ELBO, k = 1: same images / whole test set | published (nats) | protocol differences |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    models = results.get("models", {})
    if not models:
        raise ValueError("iwae_anchor_table: the results hold no measured model yet "
                         "(run python -m benchmarks.iwae_anchor --model mlp)")
    for entry in models.values():
        training, iwae = entry["training"], entry["iwae"]
        epochs = f"{training['epochs']} epoch{'' if training['epochs'] == 1 else 's'}"
        minutes = training["wall_seconds"] / 60
        images = (f"{iwae['images']}" if iwae["images"] == iwae["test_images"]
                  else f"{iwae['images']} of {iwae['test_images']}")
        where = training.get("hardware", entry["hardware"])  # older files: scored where trained
        lines.append(f"| {_cell(entry['model'])} | {epochs}, {minutes:.0f} min on {_cell(where)} | "
                     f"{iwae['k']} | {images} | {iwae['mean']:.2f} ± {iwae['standard_error']:.2f} | "
                     f"{_elbo_cells(entry['elbo_k1'])} | {refs} | "
                     f"{_cell('; '.join(entry['protocol_differences']))} |")
    if "burda2016" in published:
        p = published["burda2016"]["protocol"]
        lines.append(f"| Burda et al. 2016, Table 1: VAE, 1 stochastic layer | {_cell(p['training'])} | "
                     f"5000 | 10000 | {published['burda2016']['value_nats']:.2f} | – | – | "
                     f"the reference protocol: {_cell(p['architecture'])} |")
    if "pythae" in published:
        p = published["pythae"]["protocol"]
        lines.append(f"| pythae: VAE on binary MNIST | {_cell(p['training'])} | 200 | not stated | "
                     f"{published['pythae']['value_nats']:.2f} | – | – | "
                     f"{_cell(p['data'])}; {_cell(p['architecture'])} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- time to quality, whole process

def time_to_quality_markdown(results: dict[str, Any]) -> str:
    """The contestants of ``time-to-quality-*.json``: time to target and the yardsticks there."""
    target = results["target"]
    lines = [f"Target: reconstruction MSE ≤ {target['mse']:.4f} and Fréchet distance ≤ {target['fd']:.1f} "
             f"({target['source']}).", "",
             "| contestant | recipe, loop | time to target | images seen | MSE there | FD there | "
             "evaluations (time left out) |", "|---|---|---:|---:|---:|---:|---|"]
    runs = [("A", results["A"])] + [(f"B, run {i + 1}", b) for i, b in enumerate(results["B"])]
    for name, run in runs:
        if run["reached"]:
            time_text, images = f"{run['time_to_target_s']:.1f} s", f"{run['images_to_target']:,}"
            there = run["at_target"]
        elif run.get("lower_bound"):
            time_text = f"≥ {run['lower_bound']['time_to_target_s']:.0f} s (not reached)"
            images, there = "–", run["evaluations"][-1]["scores"]
        elif run.get("estimated"):
            time_text = f"{run['estimated']['time_to_target_s']:.0f} s (estimated)"
            images, there = "–", run["evaluations"][-1]["scores"]
        else:
            time_text, images, there = "not reached", "–", run["evaluations"][-1]["scores"]
        lines.append(f"| {name} | `{run['recipe']}`, {run['loop']} | {time_text} | {images} | "
                     f"{there['mse']:.4f} | {there['fd']:.1f} | every {run['eval_every_images']:,} images, "
                     f"{run['eval_seconds_total']:.0f} s |")
    return "\n".join(lines)


def whole_process_markdown(results: dict[str, Any]) -> str:
    """Median wall time of each command of ``whole-process-*.json``, and plain / command."""
    lines = ["| process | median wall time | plain script / this (range) |", "|---|---:|---:|"]
    for name, run in results["runs"].items():
        ratio = (f"{run['ratio_plain_over_this']:.2f} ({run['ratio_range'][0]:.2f}–{run['ratio_range'][1]:.2f})"
                 if "ratio_plain_over_this" in run else "")
        lines.append(f"| {name} | {run['median_s']:.2f} s | {ratio} |")
    return "\n".join(lines)


BREAKDOWN_PHASES = ("imports", "data loading", "training", "test evaluation", "checkpoint writing", "other")


def breakdown_markdown(results: dict[str, Any]) -> str:
    """Seconds and share of each phase of the profiled runs (a column per process)."""
    profiles = results["breakdown"]
    lines = ["| phase | " + " | ".join(profiles) + " |", "|---|" + "---:|" * len(profiles)]
    for phase in (*BREAKDOWN_PHASES, "total_s"):
        cells = [f"{p[phase]:.2f} s ({100 * p[phase] / p['total_s']:.0f} %)" if phase != "total_s"
                 else f"{p[phase]:.2f} s" for p in profiles.values()]
        lines.append(f"| {'total (under the profiler)' if phase == 'total_s' else phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
