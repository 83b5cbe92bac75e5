"""How long each notebook takes to run: the record ``tools/run_notebooks.py`` keeps.

``book/execution_times.json`` holds one entry per notebook and mode (``real``: the settings
the book's outputs come from; ``quick``: ``VAE_COURSE_QUICK=1``, what CI runs), each with
the wall time, the date, the hardware, the torch version and the dataset. A new run of a
notebook in a mode replaces that entry, so the file stays one row per notebook.

The book page ``book/execution_statistics.ipynb`` shows the table and checks the budgets
below against it with :func:`summary`; nothing on that page is typed by hand.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMES_PATH = REPO / "book" / "execution_times.json"
STATS_PAGE = REPO / "book" / "execution_statistics.ipynb"  # shows the record; never timed itself
MODES = ("real", "quick")

# The budgets (issue 15 §3): seconds, and what each one covers.
CHAPTER_BUDGET_S = 3 * 60    # each chapter, real mode, on the 2-core CPU, with the shipped weights
BOOK_BUDGET_S = 20 * 60      # every notebook of the book, real mode, one after the other
CI_BUDGET_S = 10 * 60        # all of CI (.ci/run)


def book_notebooks(repo: Path = REPO) -> list[str]:
    """Every executed notebook of the book, repository-relative, in run order (stats page excluded)."""
    paths = sorted((repo / "notebooks").glob("*.ipynb")) + sorted((repo / "book").glob("*.ipynb"))
    return [p.relative_to(repo).as_posix() for p in paths if p.name != STATS_PAGE.name]


def load(path: Path = TIMES_PATH) -> dict:
    """The record: ``{"notebooks": {name: {mode: entry}}}`` (empty when there is no file yet)."""
    if not Path(path).is_file():
        return {"notebooks": {}}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data.setdefault("notebooks", {})
    return data


def entry(seconds: float, mode: str, *, hardware: str | None = None,
          dataset: str | None = None, date: str | None = None) -> dict:
    """One run's record: wall time, mode, UTC date, hardware, torch version and dataset."""
    import torch

    from vae_course.datasets import dataset_name
    from vae_course.devices import describe_hardware

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return {
        "seconds": round(float(seconds), 1),
        "mode": mode,
        "date": date or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hardware": hardware or describe_hardware(),
        "torch": torch.__version__,
        "dataset": dataset or dataset_name(),
    }


def _write(data: dict, path: Path) -> dict:
    """Replace the record file atomically (a crash leaves the old file, never half a new one)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return data


def record(notebook: str, run: dict, path: Path = TIMES_PATH) -> dict:
    """Store ``run`` (from :func:`entry`) as ``notebook``'s entry for its mode, in place."""
    data = load(path)
    data["notebooks"].setdefault(notebook, {})[run["mode"]] = run
    data["notebooks"] = dict(sorted(data["notebooks"].items()))
    return _write(data, path)


def ci_run(log_text: str) -> dict:
    """What ``.ci/run`` printed about its own time: the machine line (``ci: on CPU, N cores,
    DATE``), each stage's ``ci: STAGE took N s`` and the total (``all of CI N s``).  A log
    without the machine line or the total (an older or unfinished run) is refused."""
    machine = re.search(r"^ci: on (.+), (\d+) cores, (\S+)$", log_text, re.M)
    total = re.search(r"all of CI (\d+) s", log_text)
    if not machine or not total:
        raise ValueError("not a finished .ci/run log: it needs the line 'ci: on CPU, N cores, DATE' "
                         "and the total 'all of CI N s'; run CI to the end and pass its whole output")
    stages = {name: float(s) for name, s in re.findall(r"^ci: (.+?) took (\d+) s", log_text, re.M)}
    return {"seconds": float(total.group(1)), "stages": stages, "date": machine.group(3),
            "hardware": f"CPU {machine.group(1)}, {machine.group(2)} cores"}


def record_ci(run: dict, path: Path = TIMES_PATH) -> dict:
    """Store a CI run (from :func:`ci_run`) as the record's ``ci`` entry, replacing the last."""
    data = load(path)
    data["ci"] = run
    return _write(data, path)


def _budget(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def table_rows(data: dict, notebooks: list[str] | None = None) -> list[dict]:
    """Per notebook: real and quick time, and the machine and date of the newest of the two."""
    notebooks = notebooks or book_notebooks()
    rows = []
    for name in notebooks:
        runs = data["notebooks"].get(name, {})
        newest = max(runs.values(), key=lambda r: r["date"]) if runs else None
        rows.append({
            "notebook": name,
            "real_s": runs.get("real", {}).get("seconds"),
            "quick_s": runs.get("quick", {}).get("seconds"),
            "machine": newest["hardware"] if newest else None,
            "torch": newest["torch"] if newest else None,
            "dataset": newest["dataset"] if newest else None,
            "date": newest["date"] if newest else None,
        })
    return rows


def summary(data: dict, notebooks: list[str] | None = None) -> list[dict]:
    """Each budget with what the record shows: ``status`` is met, not met or not measured."""
    notebooks = notebooks or book_notebooks()
    runs = data["notebooks"]
    real = {n: runs[n]["real"]["seconds"] for n in notebooks if "real" in runs.get(n, {})}
    quick = {n: runs[n]["quick"]["seconds"] for n in notebooks if "quick" in runs.get(n, {})}
    chapters = [n for n in notebooks if n.startswith("notebooks/")]
    out = []
    for name in chapters:
        s = real.get(name)
        out.append({"budget": f"{Path(name).stem} in real mode ≤ {_budget(CHAPTER_BUDGET_S)}",
                    "measured": None if s is None else _minutes(s),
                    "status": "not measured" if s is None
                    else ("met" if s <= CHAPTER_BUDGET_S else "not met")})
    missing = [n for n in notebooks if n not in real]
    total = sum(real.values())
    out.append({"budget": f"whole book in real mode ≤ {_budget(BOOK_BUDGET_S)}",
                "measured": (_minutes(total) if not missing
                             else f"{_minutes(total)} for {len(real)} of {len(notebooks)} notebooks"),
                "status": ("met" if total <= BOOK_BUDGET_S else "not met") if not missing
                else ("not met" if total > BOOK_BUDGET_S else "not measured")})
    quick_total = sum(quick.values())
    quick_missing = [n for n in notebooks if n not in quick]
    ci = data.get("ci")
    if ci:  # recorded from a whole .ci/run log (python tools/execution_times.py --ci-log FILE)
        stages = ", ".join(f"{name} {_minutes(s)}" for name, s in ci["stages"].items())
        out.append({"budget": f"CI ≤ {_budget(CI_BUDGET_S)}",
                    "measured": f"{_minutes(ci['seconds'])} ({stages}; {ci['hardware']}, {ci['date'][:10]})",
                    "status": "met" if ci["seconds"] <= CI_BUDGET_S else "not met"})
        return out
    # Without a CI log, only the notebooks' quick-mode total is known: CI also runs the package
    # tests, the book build, the portability and single-dataset passes and a second
    # environment. Over the budget it is "not met", under it CI is still "not measured".
    out.append({"budget": f"CI ≤ {_budget(CI_BUDGET_S)}",
                "measured": (f"notebooks in quick mode: {_minutes(quick_total)}"
                             + (f" ({len(quick)} of {len(notebooks)})" if quick_missing else "")
                             + "; the rest of CI is not timed here"),
                "status": "not met" if quick_total > CI_BUDGET_S else "not measured"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record a whole CI run's time in book/execution_times.json "
                                                 "(notebook times are recorded by tools/run_notebooks.py).")
    parser.add_argument("--ci-log", type=Path, required=True, metavar="FILE",
                        help="the output of a finished `bash .ci/run`")
    args = parser.parse_args(argv)
    try:
        run = ci_run(args.ci_log.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        parser.error(f"--ci-log {args.ci_log}: {exc}")
    record_ci(run)
    print(f"recorded CI: {_minutes(run['seconds'])} on {run['hardware']} ({run['date']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
