"""Automatic checks for the course's exercises.

Each ``check_<name>(fn)`` runs the learner's function on cases with known answers and
prints one line: ``PASS`` with what was checked, or ``FAIL`` with a hint aimed at the usual
mistake. It returns nothing, so a notebook cell shows just that line, and it never raises,
so a notebook keeps running when an exercise is still unsolved (a stub raising
NotImplementedError is reported as "not done yet").

A check must never be wrong, in either direction. So it compares *values*, whatever dtype
or container a right answer arrives in (float64 and NumPy-built answers are right), at the
float32 tolerance of :mod:`vae_course.tolerances`; it asks for a type only where the exercise
does (a float32 array, a Python float, a tensor), and says what to change. Its cases are
chosen so that no known wrong formula agrees with the right one on all of them, and each
known slip (a table of wrong formulas per check) gets its own hint.

How a check runs, compares and reports (the machinery every check shares) is in
:mod:`vae_course.grading`; this module holds the checks themselves, chapter by chapter, each
with its cases and its table of known mistakes.
"""
from __future__ import annotations

import math
import numbers
import struct
from typing import Callable

import numpy as np
import torch

from .grading import Fail, as_array, call, close, expect, expect_tensor, known_slip, run_check


# --- chapter 1: the data ----------------------------------------------------------------------

def check_class_counts(fn: Callable[[np.ndarray], np.ndarray]) -> None:
    """``fn(labels) -> counts`` where ``counts[k]`` is how many labels equal k (10 classes).
    Any container of whole numbers will do (array, list, tensor): the exercise asks for counts."""
    def body():
        labels = np.array([3, 1, 3, 0, 7, 7, 7, 3], dtype=np.uint8)  # no 8 or 9: minlength matters
        got, want = as_array(call(fn, labels.copy())), np.bincount(labels, minlength=10)
        expect(got.shape != (len(np.unique(labels)),), "np.unique leaves out the classes with no "
                "images, so counts[k] ends up under the wrong class; np.bincount(labels, minlength=10)")
        expect(got.shape != (labels.max() + 1,), "np.bincount stops at the largest label present "
                "(7 here): pass minlength=10 so that classes 8 and 9 get their 0")
        expect(got.shape == (10,), f"expected 10 counts (one per class), got shape {got.shape}")
        expect(not np.isclose(got.sum(), 1), "these are fractions: return how many labels equal "
                "each class, not their share")
        expect(np.array_equal(got, want), f"counts {got.tolist()} are wrong for labels "
                f"{labels.tolist()}: counts[k] must be the number of labels equal to k")
        return "counts every class, including empty ones"
    run_check("class_counts", body)


# --- chapter 2: IDX ---------------------------------------------------------------------------

def _idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)


def _magic_hint(got, data: bytes, want: int) -> str | None:
    """What is wrong with a magic number, or None if it is right."""
    if isinstance(got, tuple):
        return f"magic is the tuple {got}: struct.unpack always returns a tuple, take its [0]"
    if not isinstance(got, numbers.Integral) or isinstance(got, bool):
        return f"magic should be an int, got {type(got).__name__}: struct.unpack('>I', data[:4])[0]"
    if got == struct.unpack("<I", data[:4])[0]:
        return ("the magic number came out byte-swapped: IDX is big-endian, "
                "use struct.unpack('>I', ...) (the '>' matters)")
    if got == data[2]:
        return "that is only the type byte data[2]: the magic number is all of the first 4 bytes"
    return None if got == want else (f"magic should be {want}, got {got}; read the first 4 bytes "
                                     "as one big-endian unsigned int")


def check_parse_idx_header(fn: Callable[[bytes], tuple]) -> None:
    """``fn(data) -> (magic, sizes)``: the magic number as an int and the list of dimension sizes."""
    def body():
        cases = [((0x08, (10000, 28, 28)), 2051), ((0x08, (60000,)), 2049), ((0x0D, (3, 4)), 3330)]
        for (code, shape), magic in cases:
            data = _idx_header(code, shape) + b"\x00" * 8
            got = call(fn, data)
            expect(isinstance(got, tuple) and len(got) == 2,
                    f"return a tuple (magic, sizes), got {type(got).__name__}: `return magic, sizes`")
            hint = _magic_hint(got[0], data, magic)
            expect(hint is None, hint)
            expect(isinstance(got[1], (list, tuple, np.ndarray)),
                    f"sizes should be a list of ints, got {type(got[1]).__name__}")
            sizes = [int(s) for s in got[1]]
            expect(len(sizes) == len(shape), f"{len(shape)} sizes expected, got {len(sizes)}: "
                    "do not assume three dimensions, the number of sizes is data[3]")
            expect(sizes != list(struct.unpack(f"<{len(shape)}I", data[4:4 + 4 * len(shape)])),
                    "the sizes came out byte-swapped: read them big-endian, '>I'")
            expect(sizes == list(shape), f"sizes should be {list(shape)}, got {sizes}; each is a "
                    "big-endian int32, starting at byte 4")
        return "image, label and float headers parsed, big-endian"
    run_check("parse_idx_header", body)


def check_read_images(fn: Callable[[bytes], np.ndarray]) -> None:
    """``fn(data) -> images`` of shape (N, rows, cols), float32 in [0, 1], from raw IDX image bytes."""
    def body():
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
        pixels[0, 0, :2] = 0, 255  # both ends of the range, so that 255 must become exactly 1
        data = _idx_header(0x08, pixels.shape) + pixels.tobytes()
        got = call(fn, data)
        expect(hasattr(got, "dtype"), f"return a float32 NumPy array, got {type(got).__name__}")
        values = as_array(got)
        expect(values.shape == pixels.shape, f"shape should be {pixels.shape} (N, rows, cols), got {values.shape}")
        expect(not close(values, pixels), "values are still 0..255: divide by 255 to scale them to [0, 1]")
        expect(not close(values, pixels / 256), "divide by 255, the largest pixel value, not by "
                "256: a white pixel (255) must become exactly 1.0")
        expect(not close(values, pixels.reshape(3, 5, 4).transpose(0, 2, 1) / 255),
                "rows and columns are swapped: IDX stores each image row by row (C order), which is "
                "what reshape(n, rows, cols) gives in numpy; MATLAB needs a permute, Python does not")
        expect(close(values, pixels / 255), "pixel values do not match the payload / 255; "
                "the payload starts right after the header (4 + 4*ndim bytes)")
        dtype = str(got.dtype).removeprefix("torch.")
        expect(dtype == "float32", f"the values are right but the dtype is {dtype}; the exercise "
                "asks for float32 (what the model takes, half the memory of float64): "
                ".astype(np.float32) before dividing by 255")
        return "payload read after the header, reshaped row-major and scaled to [0, 1]"
    run_check("read_images", body)


# --- chapter 3: shapes ------------------------------------------------------------------------

def _sizes(fn: Callable, cases: list[tuple]) -> list[int]:
    """The learner's output sizes for every case; a size is a whole number, so a Python int."""
    sizes = []
    for args in cases:
        got = call(fn, *args)
        if isinstance(got, float) and got.is_integer():
            raise Fail(f"return an int, got the float {got}: use floor division // (not /) or int(...)")
        expect(not isinstance(got, float), f"for {args} got {got}, not a whole number: round "
                "down with floor division //")
        expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
                f"return a Python int, got {type(got).__name__}: int(...) converts it")
        sizes.append(int(got))
    return sizes


def _check_sizes(fn: Callable, cases: list[tuple], formula: Callable, slips: list, name: str) -> None:
    """Compare on every case, then name the wrong formula that reproduces all the learner's sizes."""
    got = _sizes(fn, cases)
    bad = [(args, g, formula(*args)) for args, g in zip(cases, got) if g != formula(*args)]
    if bad:
        hint = next((h for slip, h in slips if got == [slip(*args) for args in cases]), None)
        args, g, want = bad[0]
        raise Fail(hint or f"for {args} expected {want}, got {g}; the formula is {name}")


def check_conv_output_size(fn: Callable[[int, int, int, int], int]) -> None:
    """``fn(size, kernel, stride, padding) -> output size`` of a convolution along one axis."""
    def body():
        cases = [(28, 3, 2, 1), (14, 3, 2, 1), (28, 3, 2, 0), (13, 3, 2, 0), (7, 7, 1, 0), (32, 5, 1, 2)]
        slips = [
            (lambda n, k, s, p: (n + 2 * p - k) // s, "add 1: the kernel's first position counts too"),
            (lambda n, k, s, p: (n - k) // s + 1, "include the padding: size + 2*padding"),
            (lambda n, k, s, p: (n + p - k) // s + 1, "padding is added on both sides: 2*padding"),
            (lambda n, k, s, p: -(-(n + 2 * p - k) // s) + 1,
             "round down, not up: a last step that does not fit is dropped (floor division //)"),
        ]
        _check_sizes(fn, cases, lambda n, k, s, p: (n + 2 * p - k) // s + 1, slips,
                     "floor((size + 2*padding - kernel) / stride) + 1")
        # short enough for the book's output column: a longer line wrapped there ("28 ->" / "14")
        return "'same': 28 -> 14 -> 7; 'valid': 28 -> 13 -> 6"
    run_check("conv_output_size", body)


def check_transposed_conv_output_size(fn: Callable[[int, int, int, int, int], int]) -> None:
    """``fn(size, kernel, stride, padding, output_padding) -> size`` of a transposed convolution."""
    def body():
        # the chapter's layers all give size*stride, so two cases where that shortcut is wrong
        cases = [(7, 3, 2, 1, 1), (14, 3, 2, 1, 1), (1, 7, 7, 0, 0), (28, 3, 1, 1, 0),
                 (5, 3, 2, 0, 0), (4, 5, 3, 2, 1)]
        slips = [
            (lambda n, k, s, p, op: n * s, "size*stride only holds when kernel + output_padding - "
             "2*padding equals the stride, as in the chapter's layers; in general it is "
             "(size - 1)*stride - 2*padding + kernel + output_padding"),
            (lambda n, k, s, p, op: (n - 1) * s - 2 * p + k, "add output_padding (the extra row "
             "at one side)"),
            (lambda n, k, s, p, op: n * s - 2 * p + k + op, "kernels are stamped (size - 1) "
             "strides apart: (size - 1)*stride, not size*stride"),
            (lambda n, k, s, p, op: (n - 1) * s - p + k + op, "padding is cropped from both sides: -2*padding"),
            (lambda n, k, s, p, op: (n - 1) * s + 2 * p + k + op, "padding is cropped (subtracted) "
             "in a transposed convolution, not added"),
        ]
        _check_sizes(fn, cases, lambda n, k, s, p, op: (n - 1) * s - 2 * p + k + op, slips,
                     "(size - 1)*stride - 2*padding + kernel + output_padding")
        return "7 -> 14 -> 28 (MATLAB's 'same' cropping) and 1 -> 7 (R2019b's first layer)"
    run_check("transposed_conv_output_size", body)


# --- chapter 4: sampling ----------------------------------------------------------------------

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


# --- chapter 5: ELBO --------------------------------------------------------------------------

def check_kl_normal(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(mu, logvar) -> (N,)`` closed-form KL(N(mu, diag exp(logvar)) || N(0, I)) per example."""
    from .losses import kl_normal

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
    from .losses import log_normal_pdf

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


# --- chapter 6: training ----------------------------------------------------------------------

def check_training_step(fn: Callable) -> None:
    """``fn(model, optimizer, x) -> loss``, a Python float: one step of the MATLAB loop (half-SSE + KL)."""
    from .losses import elbo_terms
    from .models import build_model

    def make():
        torch.manual_seed(0)
        model = build_model("mlp", hidden=[16], latent_dim=2)
        return model, torch.optim.Adam(model.parameters(), lr=1e-2)

    def body():
        x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        model, opt = make()
        before = [p.detach().clone() for p in model.parameters()]
        torch.manual_seed(1)
        loss = call(fn, model, opt, x)
        expect(not isinstance(loss, (torch.Tensor, np.ndarray)), "return the loss as a Python float, "
                "loss.item(), not a tensor or array")
        expect(isinstance(loss, numbers.Real) and not isinstance(loss, bool),
                f"return the loss as a Python float (loss.item()), got {type(loss).__name__}")
        if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
            grads = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())
            raise Fail("the gradients are there but the parameters did not change: call "
                        "optimizer.step() after loss.backward()" if grads else
                        "no gradients reached the parameters: call loss.backward(), after "
                        "optimizer.zero_grad() and not between backward and step")
        ref_model, ref_opt = make()
        for step in range(2):  # reference: two correct steps with the same noise
            torch.manual_seed(1)
            ref_opt.zero_grad(set_to_none=True)
            terms = elbo_terms(ref_model(x), x, reconstruction="half-sse")
            terms.loss.mean().backward()
            ref_opt.step()
            if step == 0:
                rec, kl = terms.reconstruction.detach(), terms.kl.detach()
        slips = [(lambda: (rec + kl).sum(), "that is the sum over the batch; take the mean (.mean())"),
                 (lambda: rec.mean(), "add the KL term: the loss is half the SSE plus the KL"),
                 (lambda: (2 * rec + kl).mean(), "half the sum of squares: 0.5 * SSE (the 'half-sse' loss)")]
        want = (rec + kl).mean().item()
        expect(close(float(loss), want, rtol=1e-4), known_slip(float(loss), slips) or
                f"loss {float(loss):.4f} != expected {want:.4f}: use the mean over the batch of "
                "0.5*sum of squares + KL (vae_course.losses.elbo_terms(..., 'half-sse').loss.mean())")
        torch.manual_seed(1)
        call(fn, model, opt, x)
        same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(model.parameters(), ref_model.parameters()))
        expect(same, "a second step diverges from the reference: zero the gradients every step "
                "(optimizer.zero_grad()), otherwise they accumulate")
        return "loss matches, parameters update, gradients are reset between steps"
    run_check("training_step", body)


# --- chapter 7: testing -----------------------------------------------------------------------

def check_reconstruction_errors(fn: Callable) -> None:
    """``fn(model, x) -> (N,)`` per-image mean squared error of the model's reconstruction
    (an array or a tensor, without gradients, as the exercise asks)."""
    from .evaluate import reconstruction_errors
    from .models import build_model

    def body():
        torch.manual_seed(0)
        model = build_model("mlp", hidden=[16], latent_dim=2).eval()
        x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
        got = call(fn, model, x)
        expect(not getattr(got, "requires_grad", False), "the errors carry gradients: compute them "
                "inside `with torch.no_grad():` (model.reconstruct(x) does that for you)")
        got, want = as_array(got), reconstruction_errors(model, x)
        expect(got.shape == want.shape, f"one error per image: shape {want.shape}, got {got.shape}")
        expect(close(got, as_array(call(fn, model, x))), "the errors change from call to call: "
                "decode the posterior mean (model.reconstruct(x)), don't sample z")
        with torch.no_grad():
            logits = model.decode_logits(model.encode(x)[0])
        slips = [(lambda: want * 784, "that is the sum of squares; the course reports the per-pixel mean (divide by 784)"),
                 (lambda: np.sqrt(want), "that is the root of the mean squared error: don't take the square root"),
                 (lambda: (logits - x).pow(2).flatten(1).mean(1), "those are logits: compare pixel values, "
                  "model.decode(mu) (it applies the sigmoid) or model.reconstruct(x)"),
                 (lambda: (torch.sigmoid(torch.sigmoid(logits)) - x).pow(2).flatten(1).mean(1),
                  "model.decode already applies the sigmoid: don't apply another one")]
        expect(close(got, want), known_slip(got, slips) or "values differ: reconstruct with the "
                "posterior mean (model.reconstruct(x), no sampling) and average the squared error over pixels")
        return "per-image MSE of the deterministic reconstruction"
    run_check("reconstruction_errors", body)


# --- chapter 8: generating --------------------------------------------------------------------

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


# --- chapter 9: likelihoods -------------------------------------------------------------------

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


# --- chapter 11: the likelihood ---------------------------------------------------------------

def check_gaussian_nll(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """``fn(x_hat, x, sigma) -> (N,)``: -log N(x; x_hat, sigma^2 I) of each image, summed over
    its pixels, for one fixed standard deviation ``sigma`` (a Python float)."""
    from .losses import gaussian_nll

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


__all__ = [name for name in dir() if name.startswith("check_")]
