#!/usr/bin/env bash
# Portability check: run the numerics-sensitive tests and chapter 6 as if on other CPUs.
# oneDNN (convolutions) and ATen (everything else) pick their kernels by instruction set, and
# the thread count changes how sums are split; each changes float32 results in the last bits.
# Forcing older instruction sets and other thread counts here shows that every comparison
# follows the tolerance policy (vae_course/tolerances.py) instead of this machine's rounding.
# Usage: tools/cpu_variants.sh [PYTHON]   (CI: called by `make test-portability`)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
TESTS="tests/test_train.py tests/test_evaluate.py tests/test_losses.py tests/test_layers.py
       tests/test_models.py tests/test_tolerances.py tests/test_rng.py tests/test_doctor.py
       tests/test_chapters_agree.py tests/test_threads.py"
# Threads: torch caps OMP_NUM_THREADS at the number of cores, so the count is set in the test
# process by tests/conftest.py and in the notebook's kernel by an IPython startup file.
ipython=$(mktemp -d)
trap 'rm -rf "$ipython"' EXIT
mkdir -p "$ipython/profile_default/startup"
cat > "$ipython/profile_default/startup/00-threads.py" <<'PY'
import os
import torch
torch.set_num_threads(int(os.environ["VAE_COURSE_TEST_THREADS"]))
assert torch.get_num_threads() == int(os.environ["VAE_COURSE_TEST_THREADS"])
PY
CHAPTER=notebooks/06_training_loop.ipynb
# "ISA ATEN THREADS CHAPTER": ONEDNN_MAX_CPU_ISA (oneDNN), ATEN_CPU_CAPABILITY (ATen), torch
# threads, and whether chapter 6 runs too. The tests run in every variant. The chapter, the
# slowest part, runs under each instruction set and at 3 threads: its checks compare two
# computations made in one process at one thread count, so one uneven split of the work
# (3 threads on 2 cores) stands for the other counts, which the tests cover.
VARIANTS=("SSE41 default 1 yes" "AVX2 avx2 1 yes" "ALL - 2 no" "ALL - 3 yes" "ALL - 4 no")
variant_env() {  # variant_env ISA ATEN THREADS: the variables of one variant, one per line
  echo "VAE_COURSE_TEST_THREADS=$3"; echo "IPYTHONDIR=$ipython"; echo "ONEDNN_MAX_CPU_ISA=$1"
  [ "$2" != - ] && echo "ATEN_CPU_CAPABILITY=$2"
  return 0
}
# First prove that each variant's variables take effect (the kernels really change): the
# small checks run side by side, each printing the kernels it found.
checks=()
for i in "${!VARIANTS[@]}"; do
  read -r isa aten threads chapter <<<"${VARIANTS[$i]}"
  mapfile -t env < <(variant_env "$isa" "$aten" "$threads")
  env "${env[@]}" "$PYTHON" tools/cpu_kernels.py --expect-isa "$isa" --expect-aten "$aten" \
    > "$ipython/kernels-$i.txt" 2>&1 &
  checks+=($!)
done
for i in "${!VARIANTS[@]}"; do
  if ! wait "${checks[$i]}"; then
    cat "$ipython/kernels-$i.txt" >&2
    echo "cpu_variants: the variables of '${VARIANTS[$i]}' did not select its kernels" >&2
    exit 1
  fi
  echo "${VARIANTS[$i]}: $(cat "$ipython/kernels-$i.txt")"
done
for variant in "${VARIANTS[@]}"; do
  read -r isa aten threads chapter <<<"$variant"
  mapfile -t env < <(variant_env "$isa" "$aten" "$threads")
  echo "=== $variant: ${env[*]}"
  # One-thread variants run in two pytest-xdist workers (a core each); a variant asking for
  # more threads than that runs alone, since two such workers would oversubscribe the cores.
  jobs=0
  [ "$threads" = 1 ] && jobs=2
  env "${env[@]}" "$PYTHON" -m pytest -q -p no:cacheprovider -n "$jobs" --dist loadscope \
      --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg $TESTS \
      $([ "$chapter" = yes ] && echo "$CHAPTER")
done
