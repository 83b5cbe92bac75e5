"""Checks of chapter 11's exercises (the likelihood; ``notebooks/11_course_recipe.ipynb``)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..grading import call, close, expect, expect_tensor, known_slip, run_check


def check_gaussian_nll(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """``fn(x_hat, x, sigma) -> (N,)``: -log N(x; x_hat, sigma^2 I) of each image, summed over
    its pixels, for one fixed standard deviation ``sigma`` (a Python float)."""
    from ..losses import gaussian_nll

    def body():
        g = torch.Generator().manual_seed(11)
        x, x_hat = torch.rand(4, 1, 5, 5, generator=g), torch.rand(4, 1, 5, 5, generator=g)
        pixels = x[0].numel()
        sse = (x - x_hat).pow(2).flatten(1).sum(dim=1)
        constant = pixels * 0.5 * math.log(2 * math.pi)
        for sigma in (0.3, 2.0, 1.0):  # sigma = 1 last: several slips only show at other sigmas
            got = expect_tensor(call(fn, x_hat.clone(), x.clone(), sigma),
                                "the negative log-likelihood")
            want, log_sigma = gaussian_nll(x_hat, x, sigma), pixels * math.log(sigma)
            expect(got.numel() != 1, "return one value per image, shape (N,): sum over the pixels "
                   "only, not over the batch")
            expect(got.shape == want.shape, f"shape should be {tuple(want.shape)} (one value per "
                   f"image), got {tuple(got.shape)}: sum over every pixel, .flatten(1).sum(dim=1)")
            slips = [
                (lambda: -want, "sign flipped: return -log p(x|z), which is large when x_hat is far from x"),
                (lambda: want - constant, "off by a constant: include 0.5*log(2*pi) for every pixel"),
                (lambda: want - log_sigma, "include log(sigma) for every pixel: the density's "
                 "normalisation depends on sigma"),
                (lambda: 0.5 * sse, "that is half the SSE, the sigma = 1 loss without its constant: "
                 "divide the squared error by sigma**2 and add log(sigma) + 0.5*log(2*pi) per pixel"),
                (lambda: 0.5 * sse / sigma + log_sigma + constant, "divide the squared error by "
                 "sigma**2 (the variance), not by sigma"),
                (lambda: 0.5 * sse / sigma + 0.5 * log_sigma + constant, "sigma is the standard "
                 "deviation, not the variance: the variance is sigma**2"),
                (lambda: sse / sigma**2 + log_sigma + constant, "the squared error needs its factor "
                 "1/2: 0.5 * ((x - x_hat) / sigma)**2"),
                (lambda: want / pixels, "sum over the pixels, don't average them"),
            ]
            expect(close(got, want), known_slip(got, slips) or
                   f"values at sigma = {sigma:g} differ: per pixel 0.5*((x - x_hat)/sigma)**2 + "
                   "log(sigma) + 0.5*log(2*pi), summed over the pixels of each image")
        return (f"at sigma = 1 it is half the SSE + D/2 log(2 pi) ({constant:.2f} for these "
                f"{pixels} pixels)")
    run_check("gaussian_nll", body)
