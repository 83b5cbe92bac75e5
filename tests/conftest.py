"""Shared test fixtures.

Tests run on two cores next to other work, so torch gets one thread unless
``VAE_COURSE_TEST_THREADS`` says otherwise (CI runs the numerics-sensitive tests at 1-4 threads).  Tests that need an
optional system component (the Debian Fashion-MNIST files, the real MNIST files, Chromium)
use :func:`require`, which skips on a laptop but fails when ``VAE_COURSE_STRICT=1`` (CI).
"""
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# One thread by default; CI's portability runs (tools/cpu_variants.sh) ask for 1-4 this way.
# (OMP_NUM_THREADS cannot: torch caps it at the number of cores, and CI has 2.)
THREADS = int(os.environ.get("VAE_COURSE_TEST_THREADS") or 1)
torch.set_num_threads(THREADS)

REPO = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# The real MNIST files: $VAE_COURSE_DATA/mnist, as the package finds them, else the CI layout's
# folder beside the checkout.
MNIST_DIR = next((d for d in (Path(os.environ.get("VAE_COURSE_DATA") or "/nonexistent") / "mnist",
                              REPO.parent / "shared" / "data" / "mnist")
                  if (d / "t10k-images-idx3-ubyte.gz").exists()),
                 REPO.parent / "shared" / "data" / "mnist")
STRICT = os.environ.get("VAE_COURSE_STRICT") == "1"


def chromium_binary() -> str | None:
    """Headless Chromium for the browser tests: $CHROMIUM, or the usual names on PATH."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def require(condition: bool, what: str) -> None:
    """Skip when an optional component is missing, unless CI demands it (VAE_COURSE_STRICT=1)."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"{what} is required in CI (VAE_COURSE_STRICT=1) but missing")
    pytest.skip(f"{what} not available")


@pytest.fixture
def fashion_dir() -> Path:
    require((FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists(),
            f"Fashion-MNIST in {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
    return FASHION_DIR


@pytest.fixture
def mnist_dir() -> Path:
    require((MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(), f"MNIST test files in {MNIST_DIR}")
    return MNIST_DIR


@contextlib.contextmanager
def another_process_holding(folder: Path, seconds: float):
    """Another process holds ``checkpoints.run_lock(folder)`` for ``seconds`` (or until the block
    ends): a second training run, as a user would start one in another terminal."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import time\nfrom vae_course.checkpoints import run_lock\n"
                               f"with run_lock({str(folder)!r}):\n    print('held', flush=True)\n"
                               f"    time.sleep({seconds})"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait(timeout=30)
