"""Checks of chapter 4's exercises (sampling; ``notebooks/04_sampling_layer.ipynb``)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..grading import Fail, as_array, call, close, expect, expect_tensor, known_slip, run_check


def check_reparameterize(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(mu, logvar) -> z`` drawn from N(mu, exp(logvar)) so that gradients reach mu and logvar."""
    def body():
        torch.manual_seed(0)
        np.random.seed(0)  # NumPy-built noise is reproducible too (preserved_rng restores both)
        mu = torch.tensor([[1.0, -2.0]]).repeat(20000, 1).requires_grad_()
        logvar = torch.tensor([[0.0, math.log(4.0)]]).repeat(20000, 1).requires_grad_()
        z = call(fn, mu, logvar)
        expect(not isinstance(z, tuple), "return only z, not a tuple (like the sampling layer's z, mu, logvar)")
        z = expect_tensor(z, "z")
        expect(z.shape == mu.shape, f"z must be shaped like mu {tuple(mu.shape)}, got {tuple(z.shape)}")
        expect(z.requires_grad, "z does not depend on mu/logvar in the autograd graph: build it as "
                "mu + sigma * eps with eps = torch.randn_like(mu), don't sample with .sample() or .detach()")
        values = as_array(z)
        mean, std = values.mean(0), values.std(0, ddof=1)
        expect(not np.allclose(std, 0), "every row got the same z: draw eps with mu's full shape, "
                "torch.randn_like(mu), so that each row gets its own noise")
        expect(not np.allclose(mean, [1.5, -1.0], atol=0.05), "eps must be standard normal: "
                "torch.randn_like (normal), not torch.rand_like (uniform on [0, 1))")
        expect(np.allclose(mean, [1.0, -2.0], atol=0.05), f"sample mean {mean.round(3).tolist()} "
                "should be close to mu [1, -2]")
        expect(not np.allclose(std, [1.0, 4.0], atol=0.1), "the spread is exp(logvar), i.e. the "
                "variance; the standard deviation is exp(0.5*logvar)")
        expect(np.allclose(std, [1.0, 2.0], atol=0.05),
                f"sample std {std.round(3).tolist()} should be exp(0.5*logvar) = [1, 2]")
        z.sum().backward()
        for name, param in (("mu", mu), ("logvar", logvar)):
            expect(param.grad is not None and bool(param.grad.abs().sum() > 0),
                    f"gradients do not reach {name} (torch.normal and .sample() give none, nor do "
                    f".detach(), .item() or NumPy on {name}): z = mu + torch.exp(0.5 * logvar) * eps")
        return "mean mu, standard deviation exp(logvar/2), and gradients reach mu and logvar"
    run_check("reparameterize", body)


def _near(got: float, want: float) -> bool:
    """Two Monte Carlo estimates from the same draws, summed in another order or precision."""
    return abs(got - want) <= 1e-3 * max(1.0, abs(want))


def _score_by_autograd(f: Callable, mu: float, sigma: float, eps: torch.Tensor) -> float:
    """The chapter's autograd version: d/dsigma of the surrogate mean(f(z) * log q(z)), z held fixed."""
    mu_t, sigma_t = torch.tensor(mu, requires_grad=True), torch.tensor(sigma, requires_grad=True)
    z = mu + sigma * eps
    surrogate = (f(z) * torch.distributions.Normal(mu_t, sigma_t).log_prob(z)).mean()
    return torch.autograd.grad(surrogate, sigma_t)[0].item()


def _score_slips(f: Callable, mu: float, sigma: float, eps: torch.Tensor) -> list[tuple[float, str]]:
    """Estimates that typical slips produce from the same draws, each with its hint."""
    z = (mu + sigma * eps).requires_grad_()
    slope = torch.autograd.grad(f(z).sum(), z)[0]
    z = z.detach()
    score = ((z - mu) ** 2 - sigma**2) / sigma**3
    return [
        ((f(z) * eps / sigma).mean().item(), "that is the estimate for mu; the score for sigma is "
         "((z - mu)^2 - sigma^2) / sigma^3"),
        ((slope * eps).mean().item(), "that is the reparameterization estimate f'(z) * eps; this "
         "exercise asks for the score function, f(z) * ((z - mu)^2 - sigma^2) / sigma^3"),
        ((f(z) * (z - mu) ** 2 / sigma**3).mean().item(), "subtract sigma^2 in the score, "
         "((z - mu)^2 - sigma^2) / sigma^3: it has mean 0, which keeps the estimate unbiased"),
        ((f(z) * score).sum().item(), "average over the draws (.mean()), don't sum them"),
        ((((z - 3.0) ** 2) * score).mean().item(), "call the f you are given: the check also "
         "passes other functions than (z - 3)^2"),
    ]


def check_score_grad_sigma(fn: Callable) -> None:
    """``fn(f, mu, sigma, eps) -> number``: the score-function estimate of d E[f(z)] / d sigma
    from the standard-normal draws ``eps``, computed by hand (no autograd)."""
    def body():
        cases = [(lambda z: (z - 3.0) ** 2, 0.5, 1.5, 100_000),  # the chapter's toy: exact 2*sigma
                 (lambda z: z**3 - z, -1.0, 0.7, 10_000)]  # another f, for a function that ignores f
        results = []
        for seed, (f, mu, sigma, n) in enumerate(cases):
            eps = torch.randn(n, generator=torch.Generator().manual_seed(seed))
            values = as_array(call(fn, f, mu, sigma, eps.clone()))
            expect(values.size == 1, f"return one number, got shape {values.shape}: average the "
                    "per-draw terms over the draws (.mean())")
            got, want = float(values.reshape(())), _score_by_autograd(f, mu, sigma, eps)
            hint = next((h for slip, h in _score_slips(f, mu, sigma, eps) if _near(got, slip)), None)
            expect(_near(got, want), hint or f"got {got:.4f}, autograd's surrogate gives {want:.4f}; "
                    "average f(z) * ((z - mu)^2 - sigma^2) / sigma^3 over the draws")
            results.append((got, want))
        (got, want), sigma = results[0], cases[0][2]
        return f"{got:.3f} (autograd {want:.3f}, exact {2 * sigma:.3f})"
    run_check("score_grad_sigma", body)


def check_lognormal(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(mu, sigma, eps) -> z = exp(mu + sigma * eps)``, one z per draw, differentiable in mu
    and sigma; the check estimates dE[z]/dmu and dE[z]/dsigma with autograd against the exact ones."""
    def body():
        mu, sigma = torch.tensor(0.2, requires_grad=True), torch.tensor(0.5, requires_grad=True)
        eps = torch.randn(400_000, generator=torch.Generator().manual_seed(0))
        z = expect_tensor(call(fn, mu, sigma, eps.clone()), "z")
        expect(z.shape == eps.shape, f"return one z per draw, shaped like eps {tuple(eps.shape)}, "
                f"got {tuple(z.shape)}: the check averages them itself")
        expect(z.requires_grad, "z does not depend on mu and sigma in the autograd graph: compute "
                "it with torch operations on mu and sigma (no .item(), .detach() or NumPy)")
        m, s = mu.detach(), sigma.detach()
        slips = [(lambda: m + s * eps, "z must be positive: exponentiate, z = exp(mu + sigma * eps)"),
                 (lambda: torch.exp(m + s**2 * eps), "scale eps by sigma (the standard deviation), not sigma**2")]
        if not close(z, torch.exp(m + s * eps)):
            hint, logs = known_slip(z, slips), np.log(np.abs(as_array(z)) + 1e-300)
            if hint is None and abs(logs.mean() - 0.2) < 0.01 and abs(logs.std() - 0.5) < 0.01:
                hint = "use the eps passed in, don't draw your own noise: the check compares draw by draw"
            raise Fail(hint or "values differ from exp(mu + sigma * eps) for the eps passed in")
        z.mean().backward()
        for name, param in (("mu", mu), ("sigma", sigma)):
            expect(param.grad is not None, f"gradients do not reach {name}: no .detach() or .item() on it")
        mean = math.exp(0.2 + 0.5**2 / 2)  # E[z] = exp(mu + sigma^2 / 2)
        d_mu, d_sigma = mu.grad.item(), sigma.grad.item()
        expect(abs(d_mu - mean) < 0.01 and abs(d_sigma - 0.5 * mean) < 0.01,
                f"estimates {d_mu:.4f}, {d_sigma:.4f} are off from {mean:.4f}, {0.5 * mean:.4f}; "
                "z = exp(mu + sigma * eps)")
        return (f"dE[z]/dmu {d_mu:.4f} (exact {mean:.4f}), "
                f"dE[z]/dsigma {d_sigma:.4f} (exact {0.5 * mean:.4f})")
    run_check("lognormal", body)
