"""Every pytest run in the repository (tests/, notebooks under nbval, book pages).

With pytest-xdist (``make test`` runs ``-n $(TEST_JOBS)``), each worker executes its own
notebook kernels.  Left alone, torch in every kernel would start one thread per core and the
workers would fight over the cores (OpenMP threads spin while they wait, so two 2-thread kernels
on 2 cores run several times slower than one).  Each worker's kernels get an equal share of the
cores instead, through OMP_NUM_THREADS, which the kernels inherit; an explicit setting wins.
"""
import os

WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // WORKERS))
