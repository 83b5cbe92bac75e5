"""Checks of chapter 8's exercises (generating; ``notebooks/08_generating.ipynb``)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..grading import as_array, call, close, expect, expect_tensor, run_check


def check_interpolate(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """``fn(z_a, z_b, steps) -> (steps, L)`` tensor: evenly spaced points from z_a to z_b, ends included."""
    def body():
        cases = [(torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0]), 5),
                 (torch.tensor([1.0, 0.0, -1.0]), torch.tensor([-2.0, 3.0, 0.5]), 7)]
        for z_a, z_b, steps in cases:
            got = expect_tensor(call(fn, z_a.clone(), z_b.clone(), steps), "the points")
            want = z_a + (z_b - z_a) * torch.linspace(0, 1, steps)[:, None]
            expect(tuple(got.shape) != (len(z_a), steps), f"shape {tuple(got.shape)} is (L, steps): "
                    "put the steps first, alpha[:, None] (a column) times z (a row)")
            expect(tuple(got.shape) == want.shape, f"shape should be (steps, L) = {tuple(want.shape)}, "
                    f"got {tuple(got.shape)}")
            expect(not close(got, want.flip(0)), "the points run from z_b to z_a: the first must be "
                    "z_a (alpha = 0), the last z_b (alpha = 1)")
            expect(close(got[0], z_a) and close(got[-1], z_b), "the first point must be z_a and the "
                    "last z_b: alpha = torch.linspace(0, 1, steps) includes both ends")
            expect(close(got, want), "the ends are right but the points are not evenly spaced: "
                    "(1 - alpha) * z_a + alpha * z_b with alpha = torch.linspace(0, 1, steps)")
        return "evenly spaced, both ends included"
    run_check("interpolate", body)


def check_normal_grid(fn: Callable[[int], np.ndarray]) -> None:
    """``fn(n) -> n values``: standard-normal quantiles at evenly spaced probabilities in (0, 1)."""
    from statistics import NormalDist

    def body():
        for n in (5, 8):
            got, probabilities = as_array(call(fn, n)), np.linspace(0.05, 0.95, n)
            want = np.array([NormalDist().inv_cdf(p) for p in probabilities])
            expect(got.shape == (n,), f"normal_grid({n}) should give {n} values, got shape {got.shape}")
            expect(np.all(np.isfinite(got)), "infinite values: probabilities 0 and 1 map to -inf/+inf, "
                    "stay inside, e.g. np.linspace(0.05, 0.95, n)")
            expect(not close(got, probabilities), "those are the probabilities: return their "
                    "quantiles, NormalDist().inv_cdf(p) for each p")
            expect(np.allclose(got, -got[::-1], atol=1e-6), "the grid should be symmetric around 0")
            expect(not close(got, np.linspace(got[0], got[-1], n)), "evenly spaced values are not "
                    "quantiles: apply the inverse normal CDF to evenly spaced probabilities")
            expect(close(got, want), f"expected quantiles {np.round(want, 3).tolist()} for "
                    "probabilities linspace(0.05, 0.95, n) (statistics.NormalDist().inv_cdf)")
        return "normal quantiles: dense near 0 where the prior has its mass"
    run_check("normal_grid", body)
