"""KL divergences, reconstruction terms and the ELBO (chapter 5).

Every function returns one number per image, a tensor of shape ``(N,)``, summed over pixels
or latent dimensions: nats per image.  ``mean_mse`` is the one exception (a per-pixel mean,
as ``nn.MSELoss`` computes).  Average over the batch yourself, as all sources do.

The sources, in these terms (per image, then the mean over the batch)::

    MATLAB R2022b   half_sse(sigmoid(logits), x) + kl_normal        (mse(Y,T) on a dlarray)
    MATLAB R2019b   half_sse(sigmoid(logits), x) + kl_normal
    TensorFlow CVAE bernoulli_nll(logits, x)     + kl_monte_carlo   (one sample)
    PyTorch blog    mean_mse(sigmoid(logits), x) + 0.001 * kl_normal
    pytorch/examples bernoulli_nll(logits, x)    + kl_normal        (BCE, reduction="sum")
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.nn import functional as F

from .vae import NUM_PIXELS, VAEOutput

LOG_2PI = math.log(2 * math.pi)


def _same_shape(name: str, prediction: torch.Tensor, target: torch.Tensor) -> None:
    # Broadcasting (N, 784) against (N, 1, 28, 28) would silently give a wrong loss.
    if prediction.shape != target.shape:
        raise ValueError(f"{name}: prediction {tuple(prediction.shape)} and target "
                         f"{tuple(target.shape)} must have the same shape")


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(dim=1)


# --- KL divergence ----------------------------------------------------------------------

def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL( N(mu, diag exp(logvar)) || N(0, I) ), summed over latent dims.

    ``0.5 * sum(exp(logvar) + mu^2 - 1 - logvar)``; MATLAB writes it
    ``-0.5 * sum(1 + logSigmaSq - mu.^2 - exp(logSigmaSq))``.  Zero exactly when mu = 0,
    logvar = 0 (the posterior equals the prior).
    """
    return 0.5 * _sum_per_example(torch.exp(logvar) + mu.pow(2) - 1.0 - logvar)


def log_normal_pdf(sample: torch.Tensor, mean: torch.Tensor | float,
                   logvar: torch.Tensor | float) -> torch.Tensor:
    """log N(sample; mean, diag exp(logvar)), summed over dims (the TF tutorial's function).

    ``sum(-0.5 * ((sample - mean)^2 * exp(-logvar) + logvar + log(2 pi)))``.
    ``mean`` and ``logvar`` may be numbers: ``log_normal_pdf(z, 0.0, 0.0)`` is log p(z) under
    the standard normal prior.
    """
    mean = torch.as_tensor(mean, dtype=sample.dtype, device=sample.device)
    logvar = torch.as_tensor(logvar, dtype=sample.dtype, device=sample.device)
    log_density = -0.5 * ((sample - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)
    return _sum_per_example(log_density.expand_as(sample))


def kl_monte_carlo(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Single-sample estimate of the KL: ``log q(z|x) - log p(z)`` at the drawn ``z``.

    The TF tutorial's ``logqz_x - logpz``.  Unbiased (its mean over draws of ``z`` is
    ``kl_normal``), but noisy and can be negative for a single draw.
    """
    return log_normal_pdf(z, mu, logvar) - log_normal_pdf(z, 0.0, 0.0)


# --- Reconstruction terms -----------------------------------------------------------------

def mean_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel *mean* squared error per image (``nn.MSELoss``, as in the PyTorch MLP blog).

    Not nats: it is ``half_sse / (num_pixels / 2)``, which is why the blog's KL weight of
    0.001 is not as small as it looks (see :func:`gaussian_equivalent`).
    """
    _same_shape("mean_mse", x_hat, x)
    return (x_hat - x).pow(2).flatten(1).mean(dim=1)


def half_sse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Half the sum of squared errors per image: ``0.5 * sum((x_hat - x)^2)``.

    MATLAB R2019b writes this out (``0.5 * sum((xPred - x).^2, [1 2 3])``).  MATLAB R2022b
    calls ``mse(Y, T)`` on a formatted dlarray, which is *half* the squared error normalised
    by the number of observations, ``1/(2N) * sum((Y - T)^2)``: the mean over the batch of
    this function.  It is the Gaussian negative log-likelihood with sigma = 1 without the
    constant ``num_pixels * 0.5 * log(2 pi)``.
    """
    _same_shape("half_sse", x_hat, x)
    return 0.5 * _sum_per_example((x_hat - x).pow(2))


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood, summed over pixels; takes *logits*, not probabilities.

    The TF tutorial's ``sigmoid_cross_entropy_with_logits`` summed per image, and
    pytorch/examples' ``binary_cross_entropy(..., reduction="sum")`` per image.  Working
    from logits avoids ``log(0)`` when the sigmoid saturates.  ``x`` may be grey levels in
    [0, 1] (then it is a cross-entropy, not a likelihood of binary data).
    """
    _same_shape("bernoulli_nll", logits, x)
    return _sum_per_example(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))


def gaussian_nll(x_hat: torch.Tensor, x: torch.Tensor,
                 sigma: float | torch.Tensor) -> torch.Tensor:
    """Full Gaussian negative log-likelihood with a fixed standard deviation, summed over pixels.

    ``sum(0.5 * ((x - x_hat) / sigma)^2 + log(sigma) + 0.5 * log(2 pi))``.  At sigma = 1
    it is ``half_sse + num_pixels * 0.5 * log(2 pi)``.  ``sigma`` is a number or a tensor
    that broadcasts against ``x`` (e.g. one sigma per pixel).
    """
    _same_shape("gaussian_nll", x_hat, x)
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if not bool(((sigma > 0) & torch.isfinite(sigma)).all()):  # also refuses NaN
        shown = sigma.tolist() if sigma.numel() <= 8 else f"{sigma.numel()} values incl. {sigma.flatten()[:4].tolist()}"
        raise ValueError(f"gaussian_nll: sigma must be positive and finite, got {shown}")
    nll = 0.5 * ((x - x_hat) / sigma).pow(2) + torch.log(sigma) + 0.5 * LOG_2PI
    return _sum_per_example(nll.expand_as(x))


RECONSTRUCTION = {
    "mean-mse": mean_mse,
    "half-sse": half_sse,
    "bernoulli": bernoulli_nll,   # takes logits
    "gaussian": gaussian_nll,     # needs sigma
}
KL_ESTIMATORS = ("closed-form", "monte-carlo")


# --- The ELBO ---------------------------------------------------------------------------------

def kl_per_dim(out: VAEOutput, kl: str = "closed-form") -> torch.Tensor:
    """The KL term of every image and latent dimension, ``(N, L)``: ``kl_normal`` before its sum.

    ``kl="monte-carlo"`` gives each dimension's share of ``kl_monte_carlo`` at ``out.z``.
    Free bits needs the KL per dimension, so it is kept apart from the totals.
    """
    if kl == "closed-form":
        return 0.5 * (torch.exp(out.logvar) + out.mu.pow(2) - 1.0 - out.logvar).flatten(1)
    log_q = -0.5 * ((out.z - out.mu).pow(2) * torch.exp(-out.logvar) + out.logvar)
    return (log_q + 0.5 * out.z.pow(2)).flatten(1)  # the log(2 pi) terms cancel


def free_bits_kl(kl_dims: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL the optimizer sees under free bits (Kingma et al., 2016), one number per image.

    For each dimension whose KL, averaged over the batch, is below ``free_bits`` nats, the
    term is the constant ``free_bits``: its gradient is zero, so shrinking that KL further
    gains nothing.  Dimensions above keep their own KL.  The batch mean of the result is
    ``sum_d max(free_bits, mean_n KL[n, d])``.
    """
    below = kl_dims.mean(dim=0) < free_bits                              # (L,)
    clamped = torch.where(below, torch.full_like(kl_dims, free_bits), kl_dims)
    return clamped.sum(dim=1)


class ELBOTerms(NamedTuple):
    """Per-image terms, each ``(N,)``: ``loss = reconstruction + beta * kl`` (the negative ELBO at beta = 1)."""
    reconstruction: torch.Tensor
    kl: torch.Tensor
    loss: torch.Tensor


def elbo_terms(out: VAEOutput, x: torch.Tensor, reconstruction: str = "half-sse",
               kl: str = "closed-form", beta: float = 1.0,
               sigma: float | torch.Tensor | None = None, free_bits: float = 0.0) -> ELBOTerms:
    """Loss terms for a model output ``out = model(x)``.

    ``reconstruction``: one of :data:`RECONSTRUCTION`; ``"bernoulli"`` uses ``out.logits``,
    the others compare ``sigmoid(out.logits)`` with ``x``; ``"gaussian"`` needs ``sigma``.
    ``kl``: ``"closed-form"`` (``kl_normal``) or ``"monte-carlo"`` (``kl_monte_carlo`` at
    ``out.z``).  ``beta`` weights the KL term.  Take ``.loss.mean()`` for the training loss.
    ``free_bits`` > 0 (nats per dimension) changes only ``loss``: its KL is
    :func:`free_bits_kl`, which depends on the whole batch; ``kl`` stays the true KL.
    """
    check_free_bits(free_bits, "elbo_terms")
    if reconstruction not in RECONSTRUCTION:
        raise ValueError(f"elbo_terms: unknown reconstruction {reconstruction!r}; choose one of "
                         f"{', '.join(sorted(RECONSTRUCTION))}")
    if kl not in KL_ESTIMATORS:
        raise ValueError(f"elbo_terms: unknown kl {kl!r}; choose one of {', '.join(KL_ESTIMATORS)}")
    if reconstruction == "gaussian" and sigma is None:
        raise ValueError("elbo_terms: reconstruction='gaussian' needs sigma (e.g. sigma=0.1)")
    if reconstruction != "gaussian" and sigma is not None:
        raise ValueError(f"elbo_terms: sigma only applies to reconstruction='gaussian', "
                         f"not {reconstruction!r}; leave sigma=None")

    if reconstruction == "bernoulli":
        rec = bernoulli_nll(out.logits, x)
    elif reconstruction == "gaussian":
        rec = gaussian_nll(torch.sigmoid(out.logits), x, sigma)
    else:
        rec = RECONSTRUCTION[reconstruction](torch.sigmoid(out.logits), x)
    kl_term = kl_normal(out.mu, out.logvar) if kl == "closed-form" else kl_monte_carlo(out.z, out.mu, out.logvar)
    kl_seen = free_bits_kl(kl_per_dim(out, kl), free_bits) if free_bits > 0 else kl_term
    return ELBOTerms(rec, kl_term, rec + beta * kl_seen)


def check_free_bits(free_bits: float, where: str) -> None:
    """Refuse a free-bits level that is not a finite number of nats >= 0."""
    if isinstance(free_bits, bool) or not isinstance(free_bits, (int, float)) \
            or not math.isfinite(free_bits) or free_bits < 0:
        raise ValueError(f"{where}: free_bits must be a number of nats per latent dimension >= 0 "
                         f"(0 turns it off; Kingma et al. 2016 use 0.125-2), got {free_bits!r}")


def gaussian_equivalent(reconstruction: str, beta: float, num_pixels: int = NUM_PIXELS,
                        sigma: float | None = None) -> dict[str, float]:
    """Which Gaussian decoder N(x_hat, sigma^2 I) and KL weight a squared-error loss amounts to.

    Write SSE for the per-image sum of squared errors and D for ``num_pixels``.  A Gaussian
    decoder with variance sigma^2 has ``-log p(x|z) = SSE / (2 sigma^2) + D/2 log(2 pi sigma^2)``,
    so with a KL weight beta the loss is, up to a constant,

        L(sigma^2, beta) = SSE / (2 sigma^2) + beta * KL.

    Reading each source's loss literally:

    - ``"half-sse"`` with weight b:  SSE/2 + b KL = L(1, b): sigma^2 = 1, beta = b.
    - ``"mean-mse"`` with weight w:  SSE/D + w KL = L(D/2, w): sigma^2 = D/2 (392 for
      28x28 images: sigma ~ 19.8, twenty times the whole [0, 1] pixel range).
    - ``"gaussian"`` with sigma s and weight b: L(s^2, b).

    Multiplying a loss by a positive constant changes neither its minimiser nor (up to
    Adam's epsilon) Adam's steps, and ``sigma^2 * L(sigma^2, beta) = SSE/2 + beta sigma^2 KL``.
    So only the product ``tau = beta * sigma^2`` matters: every (sigma^2, beta) with the
    same tau trains the same model.  Two normalised readings follow:

    - ``beta_at_sigma2_1 = tau``: the beta of an equivalent sigma = 1 loss (compare sources
      on one beta axis; the PyTorch blog's 0.001 becomes 0.392);
    - ``sigma2_at_beta_1 = tau``: the sigma^2 of an equivalent *un-weighted* ELBO (blog:
      sigma ~ 0.63).

    The weights are on the per-image KL with both terms averaged over the batch the same way.
    Returns ``{"sigma2", "beta", "beta_at_sigma2_1", "sigma2_at_beta_1"}``.
    ``"bernoulli"`` is not Gaussian: ValueError.
    """
    if reconstruction == "half-sse":
        sigma2 = 1.0
    elif reconstruction == "mean-mse":
        sigma2 = num_pixels / 2.0
    elif reconstruction == "gaussian":
        if sigma is None or sigma <= 0:
            raise ValueError(f"gaussian_equivalent: reconstruction='gaussian' needs a positive "
                             f"sigma, got {sigma!r}")
        sigma2 = float(sigma) ** 2
    else:
        raise ValueError(f"gaussian_equivalent: {reconstruction!r} has no Gaussian reading; "
                         f"choose one of gaussian, half-sse, mean-mse")
    if reconstruction != "gaussian" and sigma is not None:
        raise ValueError("gaussian_equivalent: sigma only applies to reconstruction='gaussian'")
    tau = float(beta) * sigma2
    return {"sigma2": sigma2, "beta": float(beta), "beta_at_sigma2_1": tau, "sigma2_at_beta_1": tau}
