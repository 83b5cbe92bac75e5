#!/usr/bin/env bash
# Every chapter and executed book page must run top to bottom with only ONE of the two datasets
# on the machine and no network. This runs them under nbval twice: all of them with only
# Fashion-MNIST reachable, then with only MNIST the pages whose code names Fashion-MNIST.
# (MNIST is the default dataset: a page that never names Fashion-MNIST runs exactly as in
# `make test`, which executes every page on MNIST; only the pages that reach for Fashion-MNIST
# can notice that it is missing.) Called by `make test-one-dataset`.
#
#   MNIST_DATA=FOLDER bash tools/test_one_dataset.sh
#
# MNIST_DATA: a folder holding MNIST's four .gz files, or a folder with an mnist/ subfolder that
# holds them; the MNIST pass uses it as $VAE_COURSE_DATA. Fashion-MNIST is found in the system
# folders ($XDG_DATA_DIRS/datasets/fashion-mnist: /usr/share/datasets/fashion-mnist from Debian's
# dataset-fashion-mnist). The MNIST pass hides those with XDG_DATA_DIRS=/nonexistent.
# Both passes: quick mode (VAE_COURSE_QUICK=1), downloads off (VAE_COURSE_OFFLINE=1), a fresh
# empty XDG_CACHE_HOME (no cached dataset or checkpoint leaks in), and a check first that
# exactly the intended dataset is reachable.
#
# The stored outputs are MNIST runs, compared by make test, not here: --nbval-lax still
# executes every cell and fails on any exception, which is what these passes prove.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

if [ -z "${MNIST_DATA:-}" ]; then
  echo "test_one_dataset: set MNIST_DATA to a folder holding MNIST's four .gz files" >&2
  echo "  (online, 'vae-course data download --dataset mnist' puts them in ~/.cache/vae-course/mnist)" >&2
  exit 2
fi
if [ ! -d "$MNIST_DATA" ]; then
  echo "test_one_dataset: MNIST_DATA=$MNIST_DATA is not a folder" >&2
  exit 2
fi
MNIST_DATA=$(cd "$MNIST_DATA" && pwd)  # absolute: the notebooks run in their own folders

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

REACHABLE='
from vae_course import datasets
for name in datasets.DATASETS:
    try:
        datasets.locate(name, download=False)
        print(name)
    except datasets.DatasetUnavailable:
        pass
'

# The pages (notebooks/*.ipynb, book/*.ipynb) with a code cell that names Fashion-MNIST.
NAMING_FASHION='
import glob, json
for path in sorted(glob.glob("notebooks/*.ipynb") + glob.glob("book/*.ipynb")):
    cells = json.load(open(path, encoding="utf-8"))["cells"]
    if any("fashion" in "".join(c["source"]).lower() for c in cells if c["cell_type"] == "code"):
        print(path)
'

one_pass() {  # one_pass DATASET PAGES [VAR=value ...]: the PAGES, with only DATASET reachable
  local dataset=$1 pages=$2
  shift 2
  mkdir "$work/$dataset"
  local run=(env -u VAE_COURSE_DATA -u VAE_COURSE_CHECKPOINTS VAE_COURSE_QUICK=1
             VAE_COURSE_OFFLINE=1 VAE_COURSE_DATASET="$dataset" XDG_CACHE_HOME="$work/$dataset" "$@")
  local found
  found=$("${run[@]}" "$PYTHON" -c "$REACHABLE" | tr '\n' ' ')
  if [ "$found" != "$dataset " ]; then
    echo "test_one_dataset: the $dataset pass needs exactly $dataset reachable, found: ${found:-none}" >&2
    echo "  (Fashion-MNIST: sudo apt-get install dataset-fashion-mnist; MNIST: MNIST_DATA=$MNIST_DATA)" >&2
    exit 1
  fi
  echo "== only $dataset reachable, offline: nbval --nbval-lax over" $pages
  local start=$SECONDS
  "${run[@]}" "$PYTHON" -m pytest -q -p no:cacheprovider -n "${TEST_JOBS:-2}" --dist loadscope \
    --nbval-lax --nbval-current-env $pages
  echo "== only $dataset: passed in $((SECONDS - start)) s"
}

one_pass fashion-mnist "notebooks book"
one_pass mnist "$("$PYTHON" -c "$NAMING_FASHION" | tr '\n' ' ')" \
  VAE_COURSE_DATA="$MNIST_DATA" XDG_DATA_DIRS=/nonexistent
