"""Automatic checks for the course's exercises.

Each ``check_<name>(fn)`` runs the learner's function on cases with known answers and
prints one line: ``PASS`` with what was checked, or ``FAIL`` with a hint aimed at the usual
mistake. It returns nothing, so a notebook cell shows just that line, and it never raises,
so a notebook keeps running when an exercise is still unsolved (a stub raising
NotImplementedError is reported as "not done yet").
"""
from __future__ import annotations

import math
import struct
import traceback
from typing import Callable

import numpy as np
import torch

from .rng import preserved_rng


class _Fail(Exception):
    """A failed expectation, with the hint to show."""


def _run_check(name: str, body: Callable[[], str]) -> bool:
    try:
        with preserved_rng():  # every generator (CPU, GPUs, Python, NumPy) stays the learner's
            detail = body()
    except NotImplementedError:
        print(f"FAIL {name}: not done yet - replace `raise NotImplementedError` with your code.")
        return False
    except _Fail as fail:
        print(f"FAIL {name}: {fail}")
        return False
    except Exception as exc:
        # The innermost frame of the learner's code (not this file, not a library): where it
        # crashed. None means the check itself choked on what the function returned.
        learner = [f for f in traceback.extract_tb(exc.__traceback__)
                   if f.filename != __file__ and "site-packages" not in f.filename]
        if learner:
            frame = learner[-1]
            print(f"FAIL {name}: your function raised {type(exc).__name__}: {exc} "
                  f"(line {frame.lineno}: {frame.line})")
        else:
            print(f"FAIL {name}: your function returned something the check cannot use "
                  f"({type(exc).__name__}: {exc}); compare its return type and shape with the exercise")
        return False
    print(f"PASS {name}: {detail}")
    return True


def _on_cpu(result):
    """A learner's tensor moved to the CPU (autograd intact), so a GPU answer compares with CPU references."""
    return result.cpu() if isinstance(result, torch.Tensor) else result


def _expect(condition: bool, hint: str) -> None:
    if not condition:
        raise _Fail(hint)


# --- chapter 1: the data ----------------------------------------------------------------------

def check_class_counts(fn: Callable[[np.ndarray], np.ndarray]) -> None:
    """``fn(labels) -> counts`` where ``counts[k]`` is how many labels equal k (10 classes)."""
    def body():
        labels = np.array([3, 1, 3, 0, 7, 7, 7, 3], dtype=np.uint8)  # no 8 or 9: minlength matters
        got = np.asarray(fn(labels))
        _expect(got.shape == (10,), f"expected 10 counts (one per class), got shape {got.shape}; "
                                    "np.bincount(labels, minlength=10) is one way")
        _expect(got.tolist() == [1, 1, 0, 3, 0, 0, 0, 3, 0, 0],
                f"counts {got.tolist()} are wrong for labels {labels.tolist()}: classes with no "
                "images must still appear (as 0)")
        return "counts every class, including empty ones"
    _run_check("class_counts", body)


# --- chapter 2: IDX ---------------------------------------------------------------------------

def _idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)


def check_parse_idx_header(fn: Callable[[bytes], tuple]) -> None:
    """``fn(data) -> (magic, sizes)``: the magic number as an int and the list of dimension sizes."""
    def body():
        cases = [((0x08, (10000, 28, 28)), 2051), ((0x08, (60000,)), 2049), ((0x0D, (3, 4)), 3330)]
        for (code, shape), magic in cases:
            data = _idx_header(code, shape) + b"\x00" * 8
            got = fn(data)
            _expect(isinstance(got, tuple) and len(got) == 2,
                    f"return a tuple (magic, sizes), got {type(got).__name__}")
            got_magic, got_sizes = got
            if got_magic == struct.unpack("<I", data[:4])[0]:
                raise _Fail("the magic number came out byte-swapped: IDX is big-endian, "
                            "use struct.unpack('>I', ...) (the '>' matters)")
            _expect(int(got_magic) == magic,
                    f"magic for dtype code {code:#04x} with {len(shape)} dims should be {magic}, "
                    f"got {got_magic}; read the first 4 bytes as one big-endian unsigned int")
            _expect([int(s) for s in got_sizes] == list(shape),
                    f"sizes should be {list(shape)}, got {list(got_sizes)}; the number of sizes is "
                    "the last byte of the magic number, each size a big-endian int32")
        return "image, label and float headers parsed, big-endian"
    _run_check("parse_idx_header", body)


def check_read_images(fn: Callable[[bytes], np.ndarray]) -> None:
    """``fn(data) -> images`` of shape (N, rows, cols), float in [0, 1], from raw IDX image bytes."""
    def body():
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
        data = _idx_header(0x08, pixels.shape) + pixels.tobytes()
        got = np.asarray(fn(data))
        _expect(got.shape == pixels.shape, f"shape should be {pixels.shape} (N, rows, cols), got {got.shape}")
        if np.allclose(got, pixels):
            raise _Fail("values are still 0..255: divide by 255 to scale them to [0, 1]")
        if got.shape == pixels.shape and np.allclose(got, pixels.reshape(3, 5, 4).transpose(0, 2, 1) / 255):
            raise _Fail("rows and columns are swapped: IDX stores each image row by row (C order), "
                        "which is what reshape(n, rows, cols) gives in numpy; MATLAB needs a permute, Python does not")
        _expect(np.allclose(got, pixels / 255.0), "pixel values do not match the payload / 255; "
                "the payload starts right after the header (4 + 4*ndim bytes)")
        return "payload read after the header, reshaped row-major and scaled to [0, 1]"
    _run_check("read_images", body)


# --- chapter 3: shapes ------------------------------------------------------------------------

def check_conv_output_size(fn: Callable[[int, int, int, int], int]) -> None:
    """``fn(size, kernel, stride, padding) -> output size`` of a convolution along one axis."""
    def body():
        for args in [(28, 3, 2, 1), (14, 3, 2, 1), (28, 3, 2, 0), (13, 3, 2, 0), (7, 7, 1, 0), (32, 5, 1, 2)]:
            want = (args[0] + 2 * args[3] - args[1]) // args[2] + 1
            got = fn(*args)
            _expect(got == want, f"for size, kernel, stride, padding = {args} expected {want}, got {got}; "
                    "the formula is floor((size + 2*padding - kernel) / stride) + 1")
        return "28 -> 14 -> 7 with 'same' padding, 28 -> 13 -> 6 with 'valid' (TensorFlow's encoder)"
    _run_check("conv_output_size", body)


def check_transposed_conv_output_size(fn: Callable[[int, int, int, int, int], int]) -> None:
    """``fn(size, kernel, stride, padding, output_padding) -> size`` of a transposed convolution."""
    def body():
        for args in [(7, 3, 2, 1, 1), (14, 3, 2, 1, 1), (1, 7, 7, 0, 0), (28, 3, 1, 1, 0)]:
            size, k, s, p, op = args
            want = (size - 1) * s - 2 * p + k + op
            got = fn(*args)
            _expect(got == want, f"for {args} expected {want}, got {got}; the formula is "
                    "(size - 1)*stride - 2*padding + kernel + output_padding")
        return "7 -> 14 -> 28 (MATLAB's 'same' cropping) and 1 -> 7 (R2019b's first layer)"
    _run_check("transposed_conv_output_size", body)


# --- chapter 4: sampling ----------------------------------------------------------------------

def check_reparameterize(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(mu, logvar) -> z`` drawn from N(mu, exp(logvar)) so that gradients reach mu and logvar."""
    def body():
        torch.manual_seed(0)
        mu = torch.tensor([[1.0, -2.0]]).repeat(20000, 1).requires_grad_()
        logvar = torch.tensor([[0.0, math.log(4.0)]]).repeat(20000, 1).requires_grad_()
        z = _on_cpu(fn(mu, logvar))
        _expect(isinstance(z, torch.Tensor) and z.shape == mu.shape,
                f"z must be a tensor shaped like mu {tuple(mu.shape)}")
        _expect(z.requires_grad, "z does not depend on mu/logvar in the autograd graph: build it as "
                "mu + sigma * eps with eps = torch.randn_like(mu), don't sample with torch.normal or .detach()")
        mean, std = z.mean(0), z.std(0)
        _expect(torch.allclose(mean, torch.tensor([1.0, -2.0]), atol=0.05),
                f"sample mean {mean.tolist()} should be close to mu [1, -2]")
        if torch.allclose(std, torch.tensor([1.0, 4.0]), atol=0.1):
            raise _Fail("the spread is exp(logvar), i.e. the variance; the standard deviation is exp(0.5*logvar)")
        _expect(torch.allclose(std, torch.tensor([1.0, 2.0]), atol=0.05),
                f"sample std {std.tolist()} should be exp(0.5*logvar) = [1, 2]")
        z.sum().backward()
        _expect(mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0,
                "gradients do not reach both mu and logvar")
        return "mean mu, standard deviation exp(logvar/2), and gradients reach mu and logvar"
    _run_check("reparameterize", body)


# --- chapter 5: ELBO --------------------------------------------------------------------------

def check_kl_normal(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(mu, logvar) -> (N,)`` closed-form KL(N(mu, diag exp(logvar)) || N(0, I)) per example."""
    from .losses import kl_normal

    def body():
        g = torch.Generator().manual_seed(0)
        mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
        got = _on_cpu(fn(mu, logvar))
        want = kl_normal(mu, logvar)
        _expect(isinstance(got, torch.Tensor), "return a torch tensor")
        if got.shape == () or got.numel() == 1:
            raise _Fail("return one KL per example, shape (N,): sum over the latent dimensions only, "
                        "not over the batch")
        _expect(got.shape == want.shape, f"shape should be {tuple(want.shape)}, got {tuple(got.shape)}; "
                "sum over dim=1 (the latent dimensions)")
        if torch.allclose(got, -want, atol=1e-5):
            raise _Fail("sign flipped: KL is >= 0, it is -0.5 * sum(1 + logvar - mu^2 - exp(logvar))")
        if torch.allclose(got, 2 * want, atol=1e-5):
            raise _Fail("twice too large: don't forget the factor 0.5")
        _expect(torch.allclose(got, want, atol=1e-5), f"values {got.tolist()} differ from {want.tolist()}")
        _expect(torch.allclose(_on_cpu(fn(torch.zeros(2, 4), torch.zeros(2, 4))), torch.zeros(2)),
                "KL must be 0 when q equals the prior (mu=0, logvar=0)")
        return "per-example closed-form KL, zero at the prior"
    _run_check("kl_normal", body)


def check_log_normal_pdf(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(sample, mean, logvar) -> (N,)`` log density of a diagonal Gaussian, summed over dims."""
    from .losses import log_normal_pdf

    def body():
        g = torch.Generator().manual_seed(1)
        x, m, lv = (torch.randn(4, 2, generator=g) for _ in range(3))
        got, want = _on_cpu(fn(x, m, lv)), log_normal_pdf(x, m, lv)
        _expect(got.shape == want.shape, f"shape should be {tuple(want.shape)}, got {tuple(got.shape)}")
        if torch.allclose(got - want, torch.full_like(want, 2 * 0.5 * float(np.log(2 * np.pi))), atol=1e-4):
            raise _Fail("off by the constant: include -0.5*log(2*pi) for every dimension")
        _expect(torch.allclose(got, want, atol=1e-5),
                "values differ: log N(x; m, s^2) = -0.5*((x-m)^2 * exp(-logvar) + logvar + log(2*pi))")
        return "matches the TensorFlow tutorial's log_normal_pdf"
    _run_check("log_normal_pdf", body)


# --- chapter 6: training ----------------------------------------------------------------------

def check_training_step(fn: Callable) -> None:
    """``fn(model, optimizer, x) -> loss (float)``: one step of the MATLAB loop (half-SSE + KL)."""
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
        loss = fn(model, opt, x)
        _expect(isinstance(loss, (float, int)) or (isinstance(loss, torch.Tensor) and loss.numel() == 1),
                "return the loss as a number")
        changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        _expect(changed, "the parameters did not change: call loss.backward() and optimizer.step()")
        ref_model, ref_opt = make()
        for _ in range(2):  # reference: two correct steps with the same noise
            torch.manual_seed(1)
            ref_opt.zero_grad(set_to_none=True)
            ref_loss = elbo_terms(ref_model(x), x, reconstruction="half-sse").loss.mean()
            ref_loss.backward()
            ref_opt.step()
            if _ == 0:
                first = ref_loss.item()
        _expect(abs(float(loss) - first) < 1e-3 * max(1.0, abs(first)),
                f"loss {float(loss):.4f} != expected {first:.4f}: use the mean over the batch of "
                "0.5*sum of squares + KL (vae_course.losses.elbo_terms(..., 'half-sse').loss.mean())")
        torch.manual_seed(1)
        fn(model, opt, x)
        same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(model.parameters(), ref_model.parameters()))
        _expect(same, "a second step diverges from the reference: zero the gradients every step "
                "(optimizer.zero_grad()), otherwise they accumulate")
        return "loss matches, parameters update, gradients are reset between steps"
    _run_check("training_step", body)


# --- chapter 7: testing -----------------------------------------------------------------------

def check_reconstruction_errors(fn: Callable) -> None:
    """``fn(model, x) -> (N,)`` per-image mean squared error of the model's reconstruction."""
    from .evaluate import reconstruction_errors
    from .models import build_model

    def body():
        torch.manual_seed(0)
        model = build_model("mlp", hidden=[16], latent_dim=2).eval()
        x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
        got = np.asarray(torch.as_tensor(fn(model, x)).detach().cpu())
        want = reconstruction_errors(model, x)
        _expect(got.shape == want.shape, f"one error per image: shape {want.shape}, got {got.shape}")
        if np.allclose(got, want * 784, rtol=1e-4):
            raise _Fail("that is the sum of squares; the course reports the per-pixel mean (divide by 784)")
        _expect(np.allclose(got, want, rtol=1e-4, atol=1e-6), "values differ: reconstruct with the "
                "posterior mean (model.reconstruct(x), no sampling) and average the squared error over pixels")
        return "per-image MSE of the deterministic reconstruction"
    _run_check("reconstruction_errors", body)


# --- chapter 8: generating --------------------------------------------------------------------

def check_interpolate(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """``fn(z_a, z_b, steps) -> (steps, L)`` points on the straight line from z_a to z_b, ends included."""
    def body():
        a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
        got = _on_cpu(fn(a, b, 5))
        _expect(tuple(got.shape) == (5, 2), f"shape should be (steps, L) = (5, 2), got {tuple(got.shape)}")
        _expect(torch.allclose(got[0], a) and torch.allclose(got[-1], b), "the first point must be z_a and the last z_b")
        _expect(torch.allclose(got[2], torch.tensor([2.0, 0.0])), "points must be evenly spaced: "
                "(1 - alpha) * z_a + alpha * z_b with alpha = torch.linspace(0, 1, steps)")
        return "evenly spaced, both ends included"
    _run_check("interpolate", body)


def check_normal_grid(fn: Callable[[int], np.ndarray]) -> None:
    """``fn(n) -> n values``: standard-normal quantiles at evenly spaced probabilities in (0, 1)."""
    from statistics import NormalDist

    def body():
        got = np.asarray(fn(5), dtype=float)
        want = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, 5)])
        _expect(got.shape == (5,), f"expected 5 values, got shape {got.shape}")
        _expect(np.all(np.isfinite(got)), "infinite values: probabilities 0 and 1 map to -inf/+inf, "
                "stay inside, e.g. np.linspace(0.05, 0.95, n)")
        _expect(np.allclose(got, -got[::-1], atol=1e-6), "the grid should be symmetric around 0")
        _expect(np.allclose(got, want, atol=1e-3), f"expected quantiles {np.round(want, 3).tolist()} for "
                "probabilities linspace(0.05, 0.95, n) (statistics.NormalDist().inv_cdf)")
        return "normal quantiles: dense near 0 where the prior has its mass"
    _run_check("normal_grid", body)


# --- chapter 9: likelihoods -------------------------------------------------------------------

def check_logmeanexp(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``fn(a) -> log(mean(exp(a), dim=-1))`` computed without overflow (the IWAE bound needs it)."""
    def body():
        a = torch.tensor([[0.0, 1.0, 2.0], [-1000.0, -1000.0, -1000.0], [800.0, 800.0, 799.0]])
        got = _on_cpu(fn(a))
        want = torch.logsumexp(a, dim=-1) - float(np.log(3))
        _expect(got.shape == want.shape, f"reduce the last dimension: shape {tuple(want.shape)}, got {tuple(got.shape)}")
        _expect(bool(torch.isfinite(got).all()), "got inf/-inf: exp(-1000) underflows and exp(800) overflows; "
                "subtract the max first, or use torch.logsumexp(a, -1) - log(n)")
        _expect(torch.allclose(got, want, atol=1e-4), f"values {got.tolist()} should be {want.tolist()}")
        return "stable for log-weights of -1000 and +800"
    _run_check("logmeanexp", body)


__all__ = [name for name in dir() if name.startswith("check_")]
