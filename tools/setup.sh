#!/usr/bin/env bash
# One-time, idempotent set-up of everything the course needs on a fresh machine:
# a virtual environment with the package, the book toolchain and the test tools, plus
# (where we are root on Debian/Ubuntu) the offline Fashion-MNIST files and Chromium.
# Called by `make book` and `make test`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# torch 2.13.0 is pinned here only (not in pyproject): other versions pull GBs of CUDA wheels
# on this project's machines. Colab and conda users keep the torch they have.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

# System packages: the Debian Fashion-MNIST files (offline data) and headless Chromium (book
# tests). apt downloads while pip installs below (started first, waited for at the end).
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
apt_pid=""
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) &
    apt_pid=$!
  else
    echo "note: missing system packages: ${need[*]}" >&2
    echo "      install them with: sudo apt-get install -y ${need[*]}" >&2
    echo "      (without them, use VAE_COURSE_DATASET=mnist with internet access)" >&2
  fi
fi

stamp="$VENV/.vae-course-setup"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "$TORCH_SPEC" -e ".[book,test]"
  touch "$stamp"
fi

if [ -n "$apt_pid" ] && ! wait "$apt_pid"; then
  echo "setup: apt-get install ${need[*]} failed (see above)" >&2
  exit 1
fi
