"""Mutation suite for the exercise checks: a check must never be wrong, in either direction.

For every ``check_<name>`` in :mod:`vae_course.exercises`: right answers written in other
ways (other formulas, float64, NumPy-built) must PASS, and typical mistakes must FAIL with
the hint written for that mistake (each asserted by its own text, so a generic "values
differ" does not count). The wrong answers learners reported as accepted are here by name.
Then what every check does with ``None`` and with a crash: the crash is placed at the
learner's own file (or notebook cell) and line, never inside this package or torch.
"""
import collections
import inspect
import math
import struct
import sys
import types
from statistics import NormalDist

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

from vae_course import exercises, layers
from vae_course.losses import elbo_terms, kl_normal

CHECKS = {name.removeprefix("check_"): fn
          for name, fn in inspect.getmembers(exercises, inspect.isfunction)
          if name.startswith("check_") and fn.__module__.startswith(exercises.__name__ + ".")}


def verdict(capsys, name, fn) -> str:
    """The one line check_<name>(fn) prints (it returns None and never raises)."""
    assert CHECKS[name](fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- chapter 1 --------------------------------------------------------------------------------

def counts_in_float64(labels):
    counts = np.zeros(10)
    for label in labels:
        counts[label] += 1
    return counts


# --- chapter 2 --------------------------------------------------------------------------------

def header_from_bytes(data):
    ndim = data[3]
    sizes = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return int.from_bytes(data[:4], "big"), sizes


def header_numpy(data):
    words = np.frombuffer(data, dtype=">u4", count=1 + data[3])
    return words[0], words[1:]


def _dims(data):
    return struct.unpack(">III", data[4:16])


def images_torch(data):
    n, rows, cols = _dims(data)
    return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(n, rows, cols).float() / 255


def images_float64_then_float32(data):
    n, rows, cols = _dims(data)
    return (np.array(list(data[16:]), dtype=np.float64) / 255).astype(np.float32).reshape(n, rows, cols)


def images_struct(data):
    n, rows, cols = _dims(data)
    pixels = struct.unpack(f">{n * rows * cols}B", data[16:16 + n * rows * cols])
    return np.array(pixels, dtype=np.float32).reshape(n, rows, cols) / np.float32(255)


def images_float64(data):
    n, rows, cols = _dims(data)
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols) / 255


def images_by(divisor):
    def read(data):
        n, rows, cols = _dims(data)
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols).astype(np.float32) / divisor
    return read


def images_column_major(data):
    n, rows, cols = _dims(data)
    pixels = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, cols, rows)
    return pixels.transpose(0, 2, 1).astype(np.float32) / 255


def images_wrong_offset(data):
    n, rows, cols = _dims(data)
    pixels = np.frombuffer(data, dtype=np.uint8, offset=12, count=n * rows * cols)
    return pixels.reshape(n, rows, cols).astype(np.float32) / 255


# --- chapter 3 --------------------------------------------------------------------------------

def conv_by_torch(size, kernel, stride, padding):
    return F.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel), stride=stride, padding=padding).shape[-1]


def tconv_by_torch(size, kernel, stride, padding, output_padding):
    return F.conv_transpose1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel), stride=stride,
                              padding=padding, output_padding=output_padding).shape[-1]


# --- chapter 4 --------------------------------------------------------------------------------

def reparameterize_numpy_noise(mu, logvar):
    eps = torch.from_numpy(np.random.standard_normal(tuple(mu.shape)))  # float64
    return mu + torch.exp(0.5 * logvar) * eps


def reparameterize_one_eps_for_all_rows(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape[1])


def score_numpy(f, mu, sigma, eps):
    z = mu + sigma * eps.numpy().astype(np.float64)
    return float(np.mean(f(z) * ((z - mu) ** 2 - sigma**2) / sigma**3))


def score_toy_only(f, mu, sigma, eps):
    z = mu + sigma * eps
    return ((z - 3.0) ** 2 * ((z - mu) ** 2 - sigma**2) / sigma**3).mean()


# --- chapter 5 --------------------------------------------------------------------------------

def kl_numpy(mu, logvar):
    m, lv = mu.numpy().astype(np.float64), logvar.numpy().astype(np.float64)
    return torch.from_numpy(0.5 * np.sum(m**2 + np.exp(lv) - lv - 1, axis=1))


def log_pdf_numpy(x, m, lv):
    x, m, lv = (t.numpy().astype(np.float64) for t in (x, m, lv))
    return torch.from_numpy(np.sum(-0.5 * ((x - m) ** 2 * np.exp(-lv) + lv + np.log(2 * np.pi)), axis=1))


def log_pdf(x, m, lv):
    return (-0.5 * ((x - m) ** 2 * torch.exp(-lv) + lv + math.log(2 * math.pi))).sum(1)


# --- chapter 6: each step gets the loss and the order of its calls --------------------------

def step_with(loss_of, order=("zero", "backward", "step"), give=lambda loss: loss.item()):
    def training_step(model, optimizer, x):
        loss = loss_of(model(x), x)
        for call in order:
            {"zero": optimizer.zero_grad, "backward": loss.backward, "step": optimizer.step}[call]()
        return give(loss)
    return training_step


def half_sse(out, x):
    return elbo_terms(out, x, reconstruction="half-sse").loss.mean()


def half_sse_by_hand_in_float64(out, x):
    rec = 0.5 * (torch.sigmoid(out.logits).double() - x.double()).pow(2).sum((1, 2, 3))
    kl = 0.5 * (out.mu.double() ** 2 + out.logvar.double().exp() - out.logvar.double() - 1).sum(1)
    return (rec + kl).mean()


# --- chapter 7 --------------------------------------------------------------------------------

def mse_of(decoded, *, grad=False):
    def reconstruction_mse(model, x):
        with torch.set_grad_enabled(grad):
            return (decoded(model, x) - x).pow(2).flatten(1).mean(1)
    return reconstruction_mse


def decode_mean(model, x):
    return model.decode(model.encode(x)[0])


# --- chapter 8 --------------------------------------------------------------------------------

def line_with(alpha_of):
    def interpolate(z_a, z_b, steps):
        alpha = alpha_of(steps)[:, None]
        return (1 - alpha) * z_a + alpha * z_b
    return interpolate


def evenly(steps):
    return torch.linspace(0, 1, steps)


def smoothstep_spaced(steps):
    alpha = torch.linspace(0, 1, steps)
    return alpha * alpha * (3 - 2 * alpha)  # ends and midpoint right, the rest bunched at the ends


def quantiles(low, high):
    return lambda n: np.array([NormalDist().inv_cdf(p) for p in np.linspace(low, high, n)])


# --- chapter 9 --------------------------------------------------------------------------------

def logmeanexp_numpy(a):
    values = a.numpy().astype(np.float64)
    m = values.max(-1, keepdims=True)
    return torch.from_numpy(np.asarray(np.squeeze(m, -1) + np.log(np.mean(np.exp(values - m), -1))))


def logmeanexp_max_without_keepdim(a):
    m = a.max(dim=-1).values
    return m + torch.log(torch.exp(a - m).mean(dim=-1))


# --- chapter 11 -------------------------------------------------------------------------------

def gaussian_nll_by_hand(x_hat, x, sigma):
    per_pixel = 0.5 * ((x - x_hat) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    return per_pixel.flatten(1).sum(1)


def sum_of_pixels(per_pixel):
    return per_pixel.flatten(1).sum(1)


# --- right answers, written in other ways: each must PASS -----------------------------------

CORRECT = {
    "class_counts": [
        ("bincount", lambda labels: np.bincount(labels, minlength=10)),
        ("float64 loop", counts_in_float64),
        ("numpy one-hot sum", lambda labels: (np.asarray(labels)[:, None] == np.arange(10)).sum(axis=0)),
        ("Counter list", lambda labels: [collections.Counter(labels.tolist())[k] for k in range(10)]),
        ("torch", lambda labels: torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=10)),
    ],
    "parse_idx_header": [
        ("struct, tuple of sizes", lambda data: (struct.unpack(">I", data[:4])[0],
                                                 struct.unpack(f">{data[3]}I", data[4:4 + 4 * data[3]]))),
        ("int.from_bytes", header_from_bytes),
        ("numpy big-endian words", header_numpy),
    ],
    "read_images": [
        ("torch float32 tensor", images_torch),
        ("float64 then float32", images_float64_then_float32),
        ("struct", images_struct),
    ],
    "conv_output_size": [
        ("math.floor", lambda n, k, s, p: math.floor((n + 2 * p - k) / s) + 1),
        ("float64 numpy", lambda n, k, s, p: int(np.floor(np.float64(n + 2 * p - k) / s)) + 1),
        ("count positions", lambda n, k, s, p: len(range(0, n + 2 * p - k + 1, s))),
        ("torch's conv1d", conv_by_torch),
    ],
    "transposed_conv_output_size": [
        ("expanded", lambda n, k, s, p, op: n * s - s + k - 2 * p + op),
        ("numpy int", lambda n, k, s, p, op: np.int64(n - 1) * s - 2 * p + k + op),
        ("float64 arithmetic, then int", lambda n, k, s, p, op: int(np.float64(n - 1) * s - 2 * p + k + op)),
        ("torch's conv_transpose1d", tconv_by_torch),
    ],
    "reparameterize": [
        ("float64", lambda mu, lv: mu.double() + torch.exp(0.5 * lv.double()) * torch.randn(mu.shape, dtype=torch.float64)),
        ("numpy noise", reparameterize_numpy_noise),
        ("rsample", lambda mu, lv: Normal(mu, torch.exp(0.5 * lv)).rsample()),
        ("sqrt of the variance", lambda mu, lv: mu + torch.sqrt(lv.exp()) * torch.randn_like(mu)),
    ],
    "score_grad_sigma": [
        ("float64", lambda f, mu, sigma, eps: (f(mu + sigma * eps.double())
                                               * (eps.double() ** 2 - 1) / sigma).mean()),
        ("numpy", score_numpy),
        ("python float via eps", lambda f, mu, sigma, eps: (f(mu + sigma * eps) * (eps**2 - 1) / sigma).mean().item()),
    ],
    "lognormal": [
        ("float64", lambda mu, sigma, eps: torch.exp(mu.double() + sigma.double() * eps.double())),
        ("numpy eps", lambda mu, sigma, eps: torch.exp(mu + sigma * torch.from_numpy(eps.numpy().astype(np.float64)))),
        ("product of exps", lambda mu, sigma, eps: torch.exp(mu) * torch.exp(sigma * eps)),
    ],
    "kl_normal": [
        ("float64", lambda mu, lv: 0.5 * (mu.double() ** 2 + lv.double().exp() - lv.double() - 1).sum(1)),
        ("numpy", kl_numpy),
        ("torch.distributions", lambda mu, lv: kl_divergence(Normal(mu, torch.exp(0.5 * lv)), Normal(0.0, 1.0)).sum(1)),
    ],
    "log_normal_pdf": [
        ("float64", lambda x, m, lv: log_pdf(x.double(), m.double(), lv.double())),
        ("numpy", log_pdf_numpy),
        ("Normal.log_prob", lambda x, m, lv: Normal(m, torch.exp(0.5 * lv)).log_prob(x).sum(1)),
    ],
    "training_step": [
        ("float64 loss by hand", step_with(half_sse_by_hand_in_float64)),
        ("numpy float", step_with(half_sse, give=lambda loss: np.float64(loss.item()))),
        ("zero_grad after step", step_with(half_sse, order=("backward", "step", "zero"))),
    ],
    "reconstruction_errors": [
        ("float64", lambda model, x: ((model.reconstruct(x).double() - x.double()) ** 2).mean((1, 2, 3))),
        ("numpy", lambda model, x: np.mean((model.reconstruct(x).numpy().astype(np.float64) - x.numpy()) ** 2,
                                           axis=(1, 2, 3))),
        ("mse_loss", lambda model, x: F.mse_loss(model.reconstruct(x), x, reduction="none").flatten(1).mean(1)),
    ],
    "interpolate": [
        ("float64 alpha from numpy", line_with(lambda steps: torch.tensor(np.linspace(0, 1, steps)))),
        ("numpy linspace of vectors", lambda a, b, steps: torch.from_numpy(np.linspace(a.numpy(), b.numpy(), steps))),
        ("torch.lerp", lambda a, b, steps: torch.lerp(a, b, torch.linspace(0, 1, steps)[:, None])),
        ("stacked", lambda a, b, steps: torch.stack([a + (b - a) * i / (steps - 1) for i in range(steps)])),
    ],
    "normal_grid": [
        ("torch icdf float32", lambda n: Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))),
        ("numpy probabilities, float64 ndtri", lambda n: torch.special.ndtri(torch.from_numpy(np.linspace(0.05, 0.95, n)))),
        ("list", lambda n: [NormalDist().inv_cdf(0.05 + 0.9 * i / (n - 1)) for i in range(n)]),
    ],
    "logmeanexp": [
        ("logsumexp", lambda a: torch.logsumexp(a, -1) - math.log(a.shape[-1])),
        ("float64", lambda a: torch.logsumexp(a.double(), -1) - math.log(a.shape[-1])),
        ("numpy", logmeanexp_numpy),
    ],
    "gaussian_nll": [
        ("by hand", gaussian_nll_by_hand),
        ("float64", lambda x_hat, x, sigma: gaussian_nll_by_hand(x_hat.double(), x.double(), sigma)),
        ("Normal.log_prob", lambda x_hat, x, sigma: -sum_of_pixels(Normal(x_hat, sigma).log_prob(x))),
        ("F.gaussian_nll_loss, full", lambda x_hat, x, sigma: sum_of_pixels(F.gaussian_nll_loss(
            x_hat, x, torch.full_like(x, sigma**2), full=True, reduction="none"))),
        ("numpy inside", lambda x_hat, x, sigma: torch.from_numpy(np.sum(
            0.5 * ((x.numpy() - x_hat.numpy()) / sigma) ** 2 + np.log(sigma) + 0.5 * np.log(2 * np.pi),
            axis=(1, 2, 3)))),
    ],
}

# --- typical mistakes: each must FAIL with its own hint --------------------------------------

MISTAKES = {
    "class_counts": [
        ("np.unique", lambda labels: np.unique(labels, return_counts=True)[1], "np.unique leaves out"),
        ("no minlength", lambda labels: np.bincount(labels), "pass minlength=10"),
        ("fractions", lambda labels: np.bincount(labels, minlength=10) / len(labels), "these are fractions"),
        ("histogram over the data's range", lambda labels: np.histogram(labels, bins=10)[0],
         "counts[k] must be the number of labels equal to k"),
    ],
    "parse_idx_header": [
        ("little-endian", lambda data: (struct.unpack("<I", data[:4])[0], [0]), "IDX is big-endian"),
        ("unpack's tuple kept", lambda data: (struct.unpack(">I", data[:4]), []), "take its [0]"),
        ("three sizes always", lambda data: (struct.unpack(">I", data[:4])[0], list(struct.unpack(">III", data[4:16]))),
         "do not assume three dimensions"),
        ("type byte as magic", lambda data: (data[2], []), "only the type byte data[2]"),
        ("list instead of tuple", lambda data: list(header_from_bytes(data)), "return a tuple (magic, sizes), got list"),
        ("little-endian sizes", lambda data: (header_from_bytes(data)[0],
                                              list(struct.unpack(f"<{data[3]}I", data[4:4 + 4 * data[3]]))),
         "sizes came out byte-swapped"),
    ],
    "read_images": [
        ("not scaled", images_by(1), "still 0..255"),
        ("divided by 256", images_by(256), "not by 256"),
        ("rows and columns swapped", images_column_major, "swapped"),
        ("float64", images_float64, "the dtype is float64"),
        ("payload offset", images_wrong_offset, "starts right after the header"),
    ],
    "conv_output_size": [
        ("no +1", lambda n, k, s, p: (n + 2 * p - k) // s, "add 1"),
        ("no padding", lambda n, k, s, p: (n - k) // s + 1, "include the padding"),
        ("padding once", lambda n, k, s, p: (n + p - k) // s + 1, "2*padding"),
        ("ceil", lambda n, k, s, p: math.ceil((n + 2 * p - k) / s) + 1, "round down, not up"),
        ("true division", lambda n, k, s, p: (n + 2 * p - k) / s + 1, "not a whole number"),
        ("float result", lambda n, k, s, p: float((n + 2 * p - k) // s + 1), "return an int, got the float"),
        ("tensor result", lambda n, k, s, p: torch.tensor((n + 2 * p - k) // s + 1), "got Tensor"),
    ],
    "transposed_conv_output_size": [
        ("size * stride (passed before)", lambda size, k, s, p, op: size * s, "size*stride only holds"),
        ("no output_padding", lambda n, k, s, p, op: (n - 1) * s - 2 * p + k, "add output_padding"),
        ("size, not size - 1", lambda n, k, s, p, op: n * s - 2 * p + k + op, "(size - 1)*stride, not size*stride"),
        ("padding once", lambda n, k, s, p, op: (n - 1) * s - p + k + op, "cropped from both sides"),
        ("padding added", lambda n, k, s, p, op: (n - 1) * s + 2 * p + k + op, "not added"),
    ],
    "reparameterize": [
        ("variance as scale", lambda mu, lv: mu + torch.exp(lv) * torch.randn_like(mu), "exp(0.5*logvar)"),
        ("torch.normal", lambda mu, lv: torch.normal(mu, torch.exp(0.5 * lv)), "gradients do not reach mu"),
        ("sample()", lambda mu, lv: Normal(mu, torch.exp(0.5 * lv)).sample(), "does not depend on mu/logvar"),
        ("uniform noise", lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.rand_like(mu), "not torch.rand_like"),
        ("one eps for all rows", reparameterize_one_eps_for_all_rows, "every row got the same z"),
        ("logvar detached", lambda mu, lv: mu + torch.exp(0.5 * lv.detach()) * torch.randn_like(mu),
         "gradients do not reach logvar"),
        ("the layer's tuple", lambda mu, lv: (mu, mu, lv), "return only z"),
    ],
    "score_grad_sigma": [
        ("estimate for mu", lambda f, mu, sigma, eps: (f(mu + sigma * eps) * eps / sigma).mean(), "estimate for mu"),
        ("pathwise", lambda f, mu, sigma, eps: (2 * (mu + sigma * eps - 3) * eps).mean(), "reparameterization estimate"),
        ("no -sigma^2", lambda f, mu, sigma, eps: (f(mu + sigma * eps) * (sigma * eps) ** 2 / sigma**3).mean(),
         "subtract sigma^2"),
        ("sum", lambda f, mu, sigma, eps: (f(mu + sigma * eps) * (eps**2 - 1) / sigma).sum(), "don't sum them"),
        ("the toy's f hard-coded", score_toy_only, "call the f you are given"),
        ("no average", lambda f, mu, sigma, eps: f(mu + sigma * eps) * (eps**2 - 1) / sigma, "return one number"),
    ],
    "lognormal": [
        ("no exp", lambda mu, sigma, eps: mu + sigma * eps, "exponentiate"),
        ("sigma squared", lambda mu, sigma, eps: torch.exp(mu + sigma**2 * eps), "not sigma**2"),
        ("own noise", lambda mu, sigma, eps: torch.exp(mu + sigma * torch.randn_like(eps)), "use the eps passed in"),
        ("item()", lambda mu, sigma, eps: torch.exp(mu.item() + sigma.item() * eps), "does not depend on mu and sigma"),
        ("mu detached", lambda mu, sigma, eps: torch.exp(mu.detach() + sigma * eps), "gradients do not reach mu"),
        ("the mean", lambda mu, sigma, eps: torch.exp(mu + sigma * eps).mean(), "return one z per draw"),
    ],
    "kl_normal": [
        ("sign", lambda mu, lv: -0.5 * (mu**2 + lv.exp() - lv - 1).sum(1), "sign flipped"),
        ("no 0.5", lambda mu, lv: (mu**2 + lv.exp() - lv - 1).sum(1), "factor 0.5"),
        ("mean over dims", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - lv - 1).mean(1), "don't average them"),
        ("no -1", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - lv).sum(1), "the -1 of every latent dimension"),
        ("logvar as log sigma", lambda mu, lv: 0.5 * (mu**2 + (2 * lv).exp() - 2 * lv - 1).sum(1),
         "logvar is already log(sigma^2)"),
        ("summed over the batch", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - lv - 1).sum(), "not over the batch"),
        ("numpy array", lambda mu, lv: kl_numpy(mu, lv).numpy(), "not a NumPy array"),
    ],
    "log_normal_pdf": [
        ("no log(2 pi)", lambda x, m, lv: (-0.5 * ((x - m) ** 2 * torch.exp(-lv) + lv)).sum(1), "log(2*pi)"),
        ("negative log-likelihood", lambda x, m, lv: -log_pdf(x, m, lv), "sign flipped"),
        ("no 0.5", lambda x, m, lv: 2 * log_pdf(x, m, lv), "factor -0.5"),
        ("mean over dims", lambda x, m, lv: log_pdf(x, m, lv) / 2, "don't average them"),
        ("no logvar term", lambda x, m, lv: log_pdf(x, m, lv) + 0.5 * lv.sum(1), "include + logvar"),
        ("times the variance", lambda x, m, lv: (-0.5 * ((x - m) ** 2 * lv.exp() + lv + math.log(2 * math.pi))).sum(1),
         "divide by the variance"),
        ("not summed", lambda x, m, lv: -0.5 * ((x - m) ** 2 * torch.exp(-lv) + lv + math.log(2 * math.pi)),
         "one value per row"),
    ],
    "training_step": [
        ("no zero_grad", step_with(half_sse, order=("backward", "step")), "zero the gradients every step"),
        ("no step", step_with(half_sse, order=("zero", "backward")), "call optimizer.step()"),
        ("zero_grad between backward and step", step_with(half_sse, order=("backward", "zero", "step")),
         "no gradients reached the parameters"),
        ("loss tensor returned", step_with(half_sse, give=lambda loss: loss.detach()), "Python float, loss.item()"),
        ("summed over the batch", step_with(lambda out, x: elbo_terms(out, x, reconstruction="half-sse").loss.sum()),
         "sum over the batch"),
        ("no KL", step_with(lambda out, x: elbo_terms(out, x, reconstruction="half-sse").reconstruction.mean()),
         "add the KL term"),
        ("full SSE", step_with(lambda out, x: (((torch.sigmoid(out.logits) - x) ** 2).sum((1, 2, 3))
                                               + kl_normal(out.mu, out.logvar)).mean()),
         "half the sum of squares"),
    ],
    "reconstruction_errors": [
        ("sum of squares", lambda model, x: (model.reconstruct(x) - x).pow(2).flatten(1).sum(1), "sum of squares"),
        ("root mean square", lambda model, x: (model.reconstruct(x) - x).pow(2).flatten(1).mean(1).sqrt(),
         "don't take the square root"),
        ("sampled z", mse_of(lambda model, x: torch.sigmoid(model(x).logits)), "change from call to call"),
        ("logits", mse_of(lambda model, x: model.decode_logits(model.encode(x)[0])), "those are logits"),
        ("sigmoid twice", mse_of(lambda model, x: torch.sigmoid(decode_mean(model, x))), "already applies the sigmoid"),
        ("with gradients", mse_of(decode_mean, grad=True), "carry gradients"),
        ("one number for the batch", lambda model, x: (model.reconstruct(x) - x).pow(2).mean(), "one error per image"),
    ],
    "interpolate": [
        ("arange / steps", line_with(lambda steps: torch.arange(steps) / steps), "includes both ends"),
        ("smoothstep spacing (passed before)", line_with(smoothstep_spaced), "not evenly spaced"),
        ("reversed", line_with(lambda steps: torch.linspace(1, 0, steps)), "run from z_b to z_a"),
        ("transposed", lambda a, b, steps: line_with(evenly)(a, b, steps).T, "is (L, steps)"),
        ("numpy array", lambda a, b, steps: np.linspace(a.numpy(), b.numpy(), steps), "not a NumPy array"),
        ("five steps always", lambda a, b, steps: line_with(evenly)(a, b, 5), "shape should be (steps, L)"),
    ],
    "normal_grid": [
        ("probabilities 0 and 1", lambda n: Normal(0.0, 1.0).icdf(torch.linspace(0, 1, n)).numpy(), "infinite values"),
        ("the probabilities", lambda n: np.linspace(0.05, 0.95, n), "those are the probabilities"),
        ("evenly spaced values", lambda n: np.linspace(-1.645, 1.645, n), "evenly spaced values are not quantiles"),
        ("lopsided probabilities", quantiles(0.05, 0.9), "symmetric around 0"),
        ("other probabilities", quantiles(0.01, 0.99), "expected quantiles"),
        ("five values always", lambda n: quantiles(0.05, 0.95)(5), "normal_grid(8) should give 8 values"),
    ],
    "logmeanexp": [
        ("a.shape[0] (passed before)", lambda a: torch.logsumexp(a, -1) - math.log(a.shape[0]), "not a.shape[0]"),
        ("naive", lambda a: torch.log(torch.exp(a).mean(dim=-1)), "subtract the max first"),
        ("max without keepdim", logmeanexp_max_without_keepdim, "keepdim=True"),
        ("dim 0", lambda a: torch.logsumexp(a, 0) - math.log(a.shape[0]), "not dim=0"),
        ("global max", lambda a: a.max() + torch.log(torch.exp(a - a.max()).mean(-1)), "each row's own max"),
        ("max not added back", lambda a: torch.log(torch.exp(a - a.max(-1, keepdim=True).values).mean(-1)),
         "add the max back"),
        ("log-sum-exp", lambda a: torch.logsumexp(a, -1), "subtract log(n)"),
    ],
    "gaussian_nll": [
        ("log-likelihood", lambda x_hat, x, sigma: -gaussian_nll_by_hand(x_hat, x, sigma), "sign flipped"),
        ("no log(2 pi)", lambda x_hat, x, sigma: sum_of_pixels(0.5 * ((x - x_hat) / sigma) ** 2 + math.log(sigma)),
         "include 0.5*log(2*pi)"),
        ("no log(sigma)", lambda x_hat, x, sigma: sum_of_pixels(0.5 * ((x - x_hat) / sigma) ** 2
                                                                 + 0.5 * math.log(2 * math.pi)),
         "include log(sigma)"),
        ("half the SSE", lambda x_hat, x, sigma: 0.5 * sum_of_pixels((x - x_hat) ** 2), "that is half the SSE"),
        ("divided by sigma", lambda x_hat, x, sigma: sum_of_pixels(0.5 * (x - x_hat) ** 2 / sigma + math.log(sigma)
                                                                    + 0.5 * math.log(2 * math.pi)),
         "not by sigma"),
        ("sigma as the variance", lambda x_hat, x, sigma: sum_of_pixels(Normal(x_hat, math.sqrt(sigma)).log_prob(x)).neg(),
         "not the variance"),
        ("no 1/2", lambda x_hat, x, sigma: sum_of_pixels(((x - x_hat) / sigma) ** 2 + math.log(sigma)
                                                          + 0.5 * math.log(2 * math.pi)),
         "needs its factor"),
        ("mean over pixels", lambda x_hat, x, sigma: gaussian_nll_by_hand(x_hat, x, sigma) / x[0].numel(),
         "don't average them"),
        ("summed over the batch", lambda x_hat, x, sigma: gaussian_nll_by_hand(x_hat, x, sigma).sum(),
         "not over the batch"),
        ("not summed", lambda x_hat, x, sigma: 0.5 * ((x - x_hat) / sigma) ** 2 + math.log(sigma)
         + 0.5 * math.log(2 * math.pi), "one value per image"),
    ],
}


def test_every_check_has_its_alternatives_and_mistakes():
    """A check added to the package gets at least 3 right answers and 4 mistakes here,
    and each mistake of a check is told something different."""
    assert set(CORRECT) == set(CHECKS) and set(MISTAKES) == set(CHECKS)
    for name in CHECKS:
        assert len(CORRECT[name]) >= 3, name
        assert len(MISTAKES[name]) >= 4, name
        hints = [hint for _, _, hint in MISTAKES[name]]
        assert len(set(hints)) == len(hints), name


@pytest.mark.parametrize("name, fn", [pytest.param(name, fn, id=f"{name}-{label}")
                                      for name, cases in CORRECT.items() for label, fn in cases])
def test_right_answer_written_another_way_passes(capsys, name, fn):
    line = verdict(capsys, name, fn)
    assert line.startswith(f"PASS {name}: "), line


@pytest.mark.parametrize("name, fn, hint", [pytest.param(name, fn, hint, id=f"{name}-{label}")
                                            for name, cases in MISTAKES.items() for label, fn, hint in cases])
def test_mistake_fails_with_its_own_hint(capsys, name, fn, hint):
    line = verdict(capsys, name, fn)
    assert line.startswith(f"FAIL {name}: "), line
    assert hint in line, line


# --- None, and crashes placed at the learner's line ------------------------------------------

@pytest.mark.parametrize("name", sorted(CHECKS))
def test_returning_none_asks_about_return(capsys, name):
    line = verdict(capsys, name, lambda *args: None)
    assert line == f"FAIL {name}: your function returned None - did you forget `return`?"


def learner_function(tmp_path, body: str, name="cell.py"):
    """A function defined in a file of its own, as a notebook cell's code is: returns it and the file."""
    path = tmp_path / name
    path.write_text(f"def learner(*args):\n    x = 1\n    {body}\n")
    namespace = {"torch": torch, "layers": layers}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["learner"], path


@pytest.mark.parametrize("body, inside", [
    ("raise ValueError('boom')", "the learner's own code"),
    ("return torch.distributions.Normal(0.0, -1.0)", "torch"),
    ("return layers.split_stats(torch.zeros(3))", "vae_course"),
])
@pytest.mark.parametrize("name", ["logmeanexp", "lognormal", "read_images"])
def test_crash_names_the_learners_file_line_and_source(capsys, tmp_path, name, body, inside):
    """Wherever the exception is raised (their code, torch, this package), the message points at
    the learner's own line: the file, the line number and the line itself."""
    fn, path = learner_function(tmp_path, body)
    line = verdict(capsys, name, fn)
    assert line.startswith(f"FAIL {name}: your function raised ValueError: "), line
    assert f"(line 3 of {path}: {body})" in line, line
    assert all(f"{module}.py" not in line for module in ("exercises", "grading", "layers")), line
    assert "site-packages" not in line


def test_crash_through_a_dist_packages_library_still_names_the_learners_line(capsys, tmp_path):
    """Colab installs packages under dist-packages: its frames are not the learner's either."""
    library = tmp_path / "dist-packages" / "helper.py"
    library.parent.mkdir()
    library.write_text("def helper():\n    raise KeyError('deep inside a library')\n")
    module = types.ModuleType("helper")
    exec(compile(library.read_text(), str(library), "exec"), module.__dict__)
    path = tmp_path / "cell.py"
    path.write_text("def learner(*args):\n    return helper()\n")
    namespace = {"helper": module.helper}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    line = verdict(capsys, "interpolate", namespace["learner"])
    assert f"KeyError: 'deep inside a library' (line 2 of {path}: return helper())" in line, line


def test_a_notebook_cell_is_named_as_jupyter_shows_it(capsys, tmp_path, monkeypatch):
    """In Jupyter a cell runs from a temporary file; the message uses the In[n] the learner sees."""
    fn, path = learner_function(tmp_path, "raise ValueError('boom')")
    compiler = types.SimpleNamespace(format_code_name=lambda f: ("Cell", "In[7]") if f == str(path) else None)
    fake_ipython = types.SimpleNamespace(get_ipython=lambda: types.SimpleNamespace(compile=compiler))
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    line = verdict(capsys, "normal_grid", fn)
    assert line.endswith("your function raised ValueError: boom (line 3 of cell In[7]: raise ValueError('boom'))")


def test_a_broadcasting_crash_mentions_keepdim(capsys, tmp_path):
    """torch's "must match the size" error is the missing keepdim more often than not."""
    fn, path = learner_function(tmp_path, "return torch.ones(3) + torch.ones(4)")
    line = verdict(capsys, "logmeanexp", fn)
    assert "RuntimeError: The size of tensor a" in line and f"line 3 of {path}" in line
    assert line.endswith("needs keepdim=True"), line
