"""The thread count the tests run at is the one asked for (CI's portability runs vary it)."""
import os

import torch


def test_torch_runs_the_thread_count_the_run_asked_for():
    asked = int(os.environ.get("VAE_COURSE_TEST_THREADS") or 1)
    assert torch.get_num_threads() == asked
