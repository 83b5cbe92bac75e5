"""Checks of chapter 9's exercises (likelihoods; ``notebooks/09_beyond.ipynb``)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..grading import Fail, as_array, call, close, expect, expect_tensor, known_slip, run_check


def _logmeanexp_slips() -> list:
    """Wrong versions of log(mean(exp(a), -1)) that learners write, each with its hint."""
    def row_max(a):
        return a.max(dim=-1, keepdim=True).values

    return [
        (lambda a: a.max(-1).values + torch.log(torch.exp(a - a.max(-1).values).mean(-1)),
         "the max must broadcast along the last dimension: a.max(dim=-1, keepdim=True) keeps it "
         "a column; without keepdim, a - m subtracts the wrong row's max"),
        (lambda a: torch.logsumexp(a, -1) - math.log(a.shape[0]), "n is the number of terms "
         "averaged, a.shape[-1] (the last dimension), not a.shape[0]"),
        (lambda a: torch.logsumexp(a, 0) - math.log(a.shape[0]), "average over the last dimension (dim=-1), not dim=0"),
        (lambda a: torch.logsumexp(a, -1), "that is log-sum-exp: subtract log(n) to get the mean"),
        (lambda a: a.max() + torch.log(torch.exp(a - a.max()).mean(-1)), "subtract each row's "
         "own max (a.max(dim=-1, keepdim=True)), not the largest of the whole tensor"),
        (lambda a: torch.log(torch.exp(a - row_max(a)).mean(-1)), "add the max back: "
         "log mean exp(a) = m + log mean exp(a - m)"),
    ]


def check_logmeanexp(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``fn(a) -> log(mean(exp(a), dim=-1))`` computed without overflow (the IWAE bound needs it)."""
    def body():
        cases = [torch.tensor([[0.0, 1.0, 2.0], [3.0, 5.0, 4.0], [1.0, -1.0, 0.5]]),  # square
                 torch.tensor([[0.0, 1.0, 2.0, 3.0], [-1000.0, -1000.0, -1000.0, -999.0],
                               [800.0, 800.0, 799.0, 798.0]]),  # not square, and extreme
                 torch.tensor([0.5, -2.0, 1.0, 3.0])]  # one dimension
        for a in cases:
            got = expect_tensor(call(fn, a.clone()), "the result")
            want = torch.logsumexp(a, dim=-1) - math.log(a.shape[-1])
            expect(got.shape == want.shape, f"reduce the last dimension only: a of shape {tuple(a.shape)} "
                    f"gives {tuple(want.shape)}, got {tuple(got.shape)}")
            if not close(got, want):
                hint = known_slip(got, _logmeanexp_slips(), a)
                expect(hint is None and bool(torch.isfinite(got).all()), hint or "got inf/-inf: "
                        "exp(-1000) underflows and exp(800) overflows; subtract the max first, or "
                        "use torch.logsumexp(a, -1) - log(n)")
                raise Fail(f"values {np.round(as_array(got), 4).tolist()} should be "
                            f"{np.round(want.numpy(), 4).tolist()}")
        return "stable for log-weights of -1000 and +800"
    run_check("logmeanexp", body)
