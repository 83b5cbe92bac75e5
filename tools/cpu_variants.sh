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
       tests/test_models.py tests/test_tolerances.py tests/test_rng.py tests/test_doctor.py"
CHAPTER=notebooks/06_training_loop.ipynb
# "ISA ATEN THREADS": oneDNN's ONEDNN_MAX_CPU_ISA, ATen's ATEN_CPU_CAPABILITY, OMP_NUM_THREADS
VARIANTS=("SSE41 default 1" "AVX2 avx2 1" "ALL - 2" "ALL - 3" "ALL - 4")
for variant in "${VARIANTS[@]}"; do
  read -r isa aten threads <<<"$variant"
  env=(OMP_NUM_THREADS="$threads" ONEDNN_MAX_CPU_ISA="$isa")
  [ "$aten" != - ] && env+=(ATEN_CPU_CAPABILITY="$aten")
  echo "=== $variant: ${env[*]}"
  # Prove the variables took effect (the kernels really change), then run the checks.
  env "${env[@]}" "$PYTHON" tools/cpu_kernels.py --expect-isa "$isa" --expect-aten "$aten" \
      --expect-threads "$threads"
  env "${env[@]}" "$PYTHON" -m pytest -q -p no:cacheprovider $TESTS
  env "${env[@]}" "$PYTHON" -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
      --nbval-sanitize-with tests/nbval_sanitize.cfg "$CHAPTER"
done
