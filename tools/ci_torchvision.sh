#!/usr/bin/env bash
# CI's second environment: torch 2.14.1 with torchvision 0.29.1, a pair that works together
# (the main .venv keeps torch 2.13.0, beside which PyPI's torchvision does not import).
# Runs there, as strictly as .ci/run:
#   - tests/test_torchvision.py: the course's IDX reader and image grids against torchvision;
#   - chapter 2 under nbval, where its torchvision cell runs instead of skipping;
#   - the package tests, on a second torch release.
# Left out: tests/test_book.py. It builds the book and drives Chromium, which needs the book
# toolchain (jupyter-book, npm, Chromium) that this environment does not install, and the
# build does not depend on torch (it never executes notebooks); `make test` runs it.
#
# Usage: bash tools/ci_torchvision.sh   (make test-vision; .ci/run calls it after make test)
#        bash tools/ci_torchvision.sh --prefetch   only create the venv and install the torch
#        pair and the package's dependencies (the slow part, one core's work), not the package:
#        .ci/run does it while `make setup` runs
# The venv (.venv-vision, about 5.5 GB) is reused while pyproject.toml and this script are
# older than it.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

PYTHON=${PYTHON:-python3}
VENV=${VISION_VENV:-.venv-vision}
PAIR=(torch==2.14.1 torchvision==0.29.1)
NEED_KB=$((7 * 1024 * 1024))  # the venv takes ~5.5 GB, pip's temporary files some more

stamp="$VENV/.vae-course-setup"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
  free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
  if [ ! -d "$VENV" ] && [ "$free_kb" -lt "$NEED_KB" ]; then
    echo "ci_torchvision: $VENV needs about 7 GB of free disk, $((free_kb / 1024 / 1024)) GB free here" >&2
    exit 1
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [ "${1:-}" = --prefetch ]; then  # not the package: its editable build would race setup's
    # the pair and what the package declares it needs (its dependencies, test and vision extras)
    mapfile -t deps < <("$VENV/bin/python" -c 'import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
print("\n".join(project["dependencies"] + extras["test"] + extras["vision"]))')
    "$VENV/bin/python" -m pip install -q "${PAIR[@]}" "${deps[@]}"
    echo "ci_torchvision: torch pair and dependencies installed in $VENV in $((SECONDS - start)) s"
    exit 0
  fi
  "$VENV/bin/python" -m pip install -q "${PAIR[@]}" -e ".[test,vision]"
  touch "$stamp"
fi
if [ "${1:-}" = --prefetch ]; then  # the venv is complete already
  exit 0
fi

export VAE_COURSE_DATASET=${VAE_COURSE_DATASET:-fashion-mnist}
if [ -z "${VAE_COURSE_DATA:-}" ] && [ -d ../shared/data ]; then
  export VAE_COURSE_DATA="$(cd ../shared/data && pwd)"
fi
export VAE_COURSE_STRICT=1 VAE_COURSE_QUICK=1 PYTHONUNBUFFERED=1
# torchvision is promised here: its failure to import fails the torchvision tests and
# chapter 2 instead of skipping them (see tests/test_torchvision.py).
export VAE_COURSE_REQUIRE_TORCHVISION=1

"$VENV/bin/python" -c 'import torch, torchvision; print(f"ci_torchvision: torch {torch.__version__}, torchvision {torchvision.__version__}")'
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -n "${TEST_JOBS:-2}" --dist loadscope \
  --ignore=tests/test_book.py \
  --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
  tests notebooks/02_idx_format.ipynb
echo "ci_torchvision: passed in $((SECONDS - start)) s"
