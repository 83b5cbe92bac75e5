"""Execute the chapter notebooks in place, so the book shows the outputs of real runs.

The book build never executes notebooks (``execute_notebooks: off`` in ``_config.yml``):
what readers see is what this script stored. It runs every ``notebooks/*.ipynb`` (or the
ones named on the command line), then the executed book pages ``book/*.ipynb`` (the results
pages, which read ``benchmarks/results/``), top to bottom with the ``python3`` kernel, no
cell time limit and the notebook's own folder as the working directory, exactly as a reader
would, and with the real settings: quick mode (``VAE_COURSE_QUICK``) is switched off.

Each run's wall time is recorded, with the mode, date, hardware, torch version and dataset,
in ``book/execution_times.json`` (one entry per notebook and mode, replaced by the next run;
see ``tools/execution_times.py``). ``--quick`` runs in quick mode (``VAE_COURSE_QUICK=1``,
as CI does) to record those times: the notebooks are executed but NOT saved, since the book
shows real runs. After any recording, the page that shows the record,
``book/execution_statistics.ipynb``, is re-executed and saved last.

Usage::

    python tools/run_notebooks.py                       # all chapters and book pages
    python tools/run_notebooks.py notebooks/05_elbo.ipynb
    python tools/run_notebooks.py --quick notebooks/0[1-4]*.ipynb   # time quick mode only

A notebook that raises stops the run with a non-zero exit and is left unchanged on disk.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
sys.path.insert(0, str(REPO))  # vae_course, when the package is not installed
sys.path.insert(0, str(Path(__file__).resolve().parent))
import execution_times  # noqa: E402  (tools/execution_times.py)


def execute_in_place(path: Path, save: bool = True) -> float:
    """Run one notebook and overwrite it atomically with its new outputs; return seconds.

    ``save=False`` runs it without writing anything (quick-mode timing).
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=None,  # training chapters run for many minutes per cell
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if not save:
        return seconds
    # Write next to the target, then rename: an interrupted run never leaves half a notebook.
    fd, tmp = tempfile.mkstemp(suffix=".ipynb.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return seconds


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def run_and_record(path: Path, quick: bool = False,
                   times_path: Path = execution_times.TIMES_PATH) -> float:
    """Execute one notebook (saved in real mode only) and record its wall time; return it."""
    mode = "quick" if quick else "real"
    # The kernel inherits this environment: real mode must never run quick, and vice versa.
    saved = os.environ.get("VAE_COURSE_QUICK")
    if quick:
        os.environ["VAE_COURSE_QUICK"] = "1"
    else:
        os.environ.pop("VAE_COURSE_QUICK", None)
    try:
        seconds = execute_in_place(path, save=not quick)
    finally:
        if saved is None:
            os.environ.pop("VAE_COURSE_QUICK", None)
        else:
            os.environ["VAE_COURSE_QUICK"] = saved
    execution_times.record(_name(path), execution_times.entry(seconds, mode), times_path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every notebooks/*.ipynb, then book/*.ipynb)")
    parser.add_argument("--quick", action="store_true",
                        help="quick mode (VAE_COURSE_QUICK=1): time the notebooks, do not save them")
    args = parser.parse_args(argv)
    stats_page = execution_times.STATS_PAGE
    paths = ([p.resolve() for p in args.notebooks]
             or sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((REPO / "book").glob("*.ipynb")))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"run_notebooks: no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    timed = [p for p in paths if p != stats_page]
    for path in timed:
        print(f"running {_name(path)} ({'quick' if args.quick else 'real'} mode) ...", flush=True)
        seconds = run_and_record(path, quick=args.quick)
        print(f"  done in {seconds:.1f} s", flush=True)
    # The statistics page shows the record: re-run it after the others, in real mode, and save it.
    if stats_page.is_file() and (timed or stats_page in paths):
        print(f"running {_name(stats_page)} (the record of the runs above) ...", flush=True)
        os.environ.pop("VAE_COURSE_QUICK", None)
        execute_in_place(stats_page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
