"""Checks of chapter 5's exercises (ELBO; ``notebooks/05_elbo.ipynb``)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..grading import as_array, call, close, expect, expect_tensor, known_slip, run_check


def check_kl_normal(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(mu, logvar) -> (N,)`` closed-form KL(N(mu, diag exp(logvar)) || N(0, I)) per example."""
    from ..losses import kl_normal

    def body():
        g = torch.Generator().manual_seed(0)
        mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
        got, want = expect_tensor(call(fn, mu.clone(), logvar.clone()), "the KL"), kl_normal(mu, logvar)
        expect(got.numel() != 1, "return one KL per example, shape (N,): sum over the latent "
                "dimensions only, not over the batch")
        expect(got.shape == want.shape, f"shape should be {tuple(want.shape)}, got {tuple(got.shape)}; "
                "sum over dim=1 (the latent dimensions)")
        slips = [
            (lambda: -want, "sign flipped: KL is >= 0, it is -0.5 * sum(1 + logvar - mu^2 - exp(logvar))"),
            (lambda: 2 * want, "twice too large: don't forget the factor 0.5"),
            (lambda: want / 3, "sum over the latent dimensions (.sum(dim=1)), don't average them"),
            (lambda: want + 1.5, "don't forget the -1 of every latent dimension"),
            (lambda: 0.5 * (mu**2 + (2 * logvar).exp() - 2 * logvar - 1).sum(1),
             "logvar is already log(sigma^2): sigma^2 = exp(logvar), log(sigma^2) = logvar"),
        ]
        expect(close(got, want), known_slip(got, slips) or
                f"values {np.round(as_array(got), 4).tolist()} differ from {np.round(want.numpy(), 4).tolist()}")
        at_prior = expect_tensor(call(fn, torch.zeros(2, 4), torch.zeros(2, 4)), "the KL")
        expect(close(at_prior, torch.zeros(2)), "KL must be 0 when q equals the prior (mu=0, logvar=0)")
        return "per-example closed-form KL, zero at the prior"
    run_check("kl_normal", body)


def check_log_normal_pdf(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(sample, mean, logvar) -> (N,)`` log density of a diagonal Gaussian, summed over dims."""
    from ..losses import log_normal_pdf

    def body():
        g = torch.Generator().manual_seed(1)
        x, m, lv = (torch.randn(4, 2, generator=g) for _ in range(3))
        got = expect_tensor(call(fn, x.clone(), m.clone(), lv.clone()), "the log density")
        want, log2pi = log_normal_pdf(x, m, lv), math.log(2 * math.pi)
        expect(got.shape == want.shape, f"shape should be {tuple(want.shape)} (one value per row, "
                f"summed over the last dimension), got {tuple(got.shape)}")
        slips = [
            (lambda: want + 2 * 0.5 * log2pi, "off by a constant: include -0.5*log(2*pi) for every dimension"),
            (lambda: -want, "sign flipped: a log density is -0.5*(...), the negative log-likelihood is its opposite"),
            (lambda: 2 * want, "twice too large: don't forget the factor -0.5"),
            (lambda: want / 2, "sum over the dimensions (.sum(dim=1)), don't average them"),
            (lambda: want + 0.5 * lv.sum(1), "include + logvar: the log of the normalizing sigma^2"),
            (lambda: (-0.5 * ((x - m) ** 2 * lv.exp() + lv + log2pi)).sum(1),
             "divide by the variance: (x - m)^2 * exp(-logvar), not * exp(logvar)"),
        ]
        expect(close(got, want), known_slip(got, slips) or "values differ: log N(x; m, s^2) = "
                "-0.5*((x-m)^2 * exp(-logvar) + logvar + log(2*pi)), summed over dimensions")
        return "matches the TensorFlow tutorial's log_normal_pdf"
    run_check("log_normal_pdf", body)
