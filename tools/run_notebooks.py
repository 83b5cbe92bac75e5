"""Execute the chapter notebooks in place, so the book shows the outputs of real runs.

The book build never executes notebooks (``execute_notebooks: off`` in ``_config.yml``):
what readers see is what this script stored. It runs every ``notebooks/*.ipynb`` (or the
ones named on the command line), then the executed book pages ``book/*.ipynb`` (the results
pages, which read ``benchmarks/results/``), top to bottom with the ``python3`` kernel, no
cell time limit and the notebook's own folder as the working directory, exactly as a reader
would, and with the real settings: quick mode (``VAE_COURSE_QUICK``) is switched off.

Usage::

    python tools/run_notebooks.py                       # all chapters and book pages
    python tools/run_notebooks.py notebooks/05_elbo.ipynb

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


def execute_in_place(path: Path) -> float:
    """Run one notebook and overwrite it atomically with its new outputs; return seconds."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every notebooks/*.ipynb, then book/*.ipynb)")
    args = parser.parse_args(argv)
    paths = ([p.resolve() for p in args.notebooks]
             or sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((REPO / "book").glob("*.ipynb")))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"run_notebooks: no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    # The kernel inherits this environment: make sure the stored outputs are full-length runs.
    os.environ.pop("VAE_COURSE_QUICK", None)
    for path in paths:
        print(f"running {path.relative_to(REPO) if path.is_relative_to(REPO) else path} ...",
              flush=True)
        seconds = execute_in_place(path)
        print(f"  done in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
