"""Measuring a trained VAE: test ELBO, reconstruction errors, latent means, IWAE likelihood (chapters 7, 9).

Every function runs the model in eval mode without gradients, in batches (so the whole test
set never has to pass through the network at once), moves each batch to the model's device,
and puts the model back in the mode it was in.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .devices import convolution_weights
from .losses import elbo_terms, log_normal_pdf
from .conditional import check_labels
from .data import BINARIZE_MODES, binarized
from .rng import randn

DYNAMIC_TEST_SEED = 1234  # fixed, so a dynamically binarized test set is the same every epoch


@contextlib.contextmanager
def inference(model: nn.Module) -> Iterator[torch.device]:
    """Eval mode and no gradients for the block, then the model's own mode back; yields its device.

    On a CPU a convolutional model runs the block in the channels-last layout, as ``fit``
    trains it: oneDNN's convolutions are about 2.5x faster in it than in PyTorch's default
    layout (the same values, up to float32 rounding).  Its own layout is put back after.
    """
    was_training = model.training
    device = next(model.parameters()).device
    relayout = device.type == "cpu" and not _channels_last(model)
    model.eval()
    if relayout:
        model.to(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            yield device
    finally:
        model.train(was_training)
        if relayout:
            model.to(memory_format=torch.contiguous_format)


def _channels_last(model: nn.Module) -> bool:
    """True when the model has no 2-D convolution or already holds them channels-last."""
    return all(w.is_contiguous(memory_format=torch.channels_last) for w in convolution_weights(model))


def _check_batch_size(batch_size: int, caller: str) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{caller}: batch_size must be a positive whole number of images, got {batch_size!r}")


def _conditional(model: nn.Module, y: torch.Tensor | None, caller: str) -> bool:
    conditional = bool(getattr(model, "conditional", False))
    if conditional and y is None:
        raise ValueError(f"{caller}: {type(model).__name__} is conditional; pass the labels as y=")
    if conditional:
        check_labels(y, model.num_classes, f"{caller}: y")  # once, not in every batch's forward
    return conditional


def evaluate_elbo(model: nn.Module, x: torch.Tensor, *, reconstruction: str, kl: str,
                  beta: float = 1.0, sigma: float | None = None, binarize: str = "none",
                  batch_size: int = 1000, y: torch.Tensor | None = None) -> dict[str, float]:
    """Mean per-image ``loss``, ``reconstruction`` and ``kl`` over ``x`` (floats, nats per image
    for the nats losses), with one sample of ``z`` per image, exactly as training computes them.

    ``binarize="static"`` thresholds ``x`` at 0.5 as training did; ``"dynamic"`` draws one
    fixed (seeded) binarization, so successive epochs are scored on the same binary images.
    ``y``: labels, needed by conditional models.
    """
    if binarize not in BINARIZE_MODES:
        raise ValueError(f"evaluate_elbo: binarize must be one of {', '.join(BINARIZE_MODES)}, got {binarize!r}")
    if len(x) == 0:
        raise ValueError("evaluate_elbo: x holds no images")
    totals = torch.zeros(3, dtype=torch.float64)
    generator = torch.Generator().manual_seed(DYNAMIC_TEST_SEED)  # CPU: the same on every device
    for xb, labels in _batches(model, x, y, batch_size, "evaluate_elbo"):
        xb = binarized(xb, binarize, generator)
        terms = elbo_terms(model(xb, *labels), xb, reconstruction=reconstruction, kl=kl, beta=beta,
                           sigma=sigma)
        # Sum in float64 on the CPU: Apple's MPS has no float64, and 10,000 float32 additions
        # would lose digits.
        totals += torch.stack((terms.loss, terms.reconstruction, terms.kl)).cpu().double().sum(dim=1)
    loss, rec, kl_value = (totals / len(x)).tolist()
    return {"loss": loss, "reconstruction": rec, "kl": kl_value}


def _batches(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, batch_size: int,
             caller: str) -> Iterator[tuple[torch.Tensor, tuple]]:
    """``(images, labels)`` batch by batch on the model's device, in eval mode without gradients;
    ``labels`` is ``(y_batch,)`` for a conditional model and ``()`` otherwise."""
    _check_batch_size(batch_size, caller)
    with inference(model) as device:
        conditional = _conditional(model, y, caller)
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            yield x[rows].to(device), ((y[rows].to(device),) if conditional else ())


def reconstruction_errors(model: nn.Module, x: torch.Tensor, batch_size: int = 1000,
                          y: torch.Tensor | None = None, sample: bool = False,
                          generator: torch.Generator | None = None) -> np.ndarray:
    """Per-image mean squared error (over pixels) of the model's reconstruction, shape ``(N,)``.

    By default it decodes the posterior mean (``model.reconstruct``), so the errors are
    deterministic: large ones flag the images the model finds unusual (chapter 7's anomaly
    detection).  ``sample=True`` decodes a draw ``z = mu + sigma * eps`` instead, as training
    does (``generator``: see :func:`vae_course.rng.randn`).
    """
    def decoded(xb: torch.Tensor, labels: tuple) -> torch.Tensor:
        if not sample:
            return model.reconstruct(xb, *labels)
        mu, logvar = model.encode(xb, *labels)
        return model.decode(model.reparameterize(mu, logvar, generator), *labels)
    errors = [(decoded(xb, labels) - xb).pow(2).flatten(1).mean(dim=1).cpu()
              for xb, labels in _batches(model, x, y, batch_size, "reconstruction_errors")]
    return torch.cat(errors).numpy() if errors else np.zeros(0, dtype=np.float32)


def encode_means(model: nn.Module, x: torch.Tensor, batch_size: int = 1000,
                 y: torch.Tensor | None = None) -> np.ndarray:
    """The encoder's means ``mu`` for every image, shape ``(N, latent_dim)`` (for latent-space plots)."""
    means = [model.encode(xb, *labels)[0].cpu()
             for xb, labels in _batches(model, x, y, batch_size, "encode_means")]
    if not means:
        return np.zeros((0, int(model.latent_dim)), dtype=np.float32)
    return torch.cat(means).numpy()


def iwae_log_likelihood(model: nn.Module, x: torch.Tensor, k: int = 1000, batch_size: int = 32,
                        chunk: int = 128, generator: torch.Generator | None = None) -> np.ndarray:
    """Importance-weighted estimate of ``log p(x)`` per image, in nats (Burda et al., 2016).

    With ``z_1..z_k ~ q(z|x)``::

        log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)      (the IWAE bound)

    computed as a log-mean-exp of ``log p(x|z) + log p(z) - log q(z|x)``.  k = 1 is the
    single-sample ELBO; the bound rises towards ``log p(x)`` as k grows.  ``p(x|z)`` is the
    Bernoulli likelihood of the decoder's logits, so ``x`` must be binary (threshold grey
    levels first: ``(x > 0.5).float()``) and the number means something only for models trained
    with ``reconstruction="bernoulli"``.

    Work is bounded by ``batch_size`` images times ``chunk`` samples per decoder pass.  Pass a
    ``generator`` for reproducible draws; a CPU one gives the same draws whatever the model's
    device (see :func:`vae_course.rng.randn`).  Returns a float64 array ``(N,)``.
    """
    if getattr(model, "conditional", False):
        raise ValueError("iwae_log_likelihood: conditional models are not supported "
                         "(the bound would be log p(x | y))")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"iwae_log_likelihood: k must be a positive integer, got {k!r}")
    if batch_size < 1 or chunk < 1:
        raise ValueError(f"iwae_log_likelihood: batch_size and chunk must be positive, "
                         f"got {batch_size} and {chunk}")
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("iwae_log_likelihood: x must be binary (0/1) for the Bernoulli likelihood; "
                         "binarize it first, e.g. (x > 0.5).float(), as the model was trained")
    results = []
    with inference(model) as device:
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device)
            n = len(xb)
            mu, logvar = model.encode(xb)
            std = torch.exp(0.5 * logvar)
            chunk_lse = []
            for first in range(0, k, chunk):
                m = min(chunk, k - first)
                eps = randn((m, *mu.shape), generator=generator, device=device, dtype=mu.dtype)
                z = (mu + std * eps).reshape(m * n, -1)                  # sample-major: (m*n, L)
                logits = model.decode_logits(z)
                targets = xb.expand(m, *xb.shape).reshape(m * n, *xb.shape[1:])
                log_px_z = -F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(1)
                log_pz = log_normal_pdf(z, 0.0, 0.0)
                log_qz_x = log_normal_pdf(z, mu.repeat(m, 1), logvar.repeat(m, 1))
                # float64 on the CPU (MPS has none): the k weights span hundreds of nats.
                log_w = (log_px_z + log_pz - log_qz_x).view(m, n).cpu().double()
                chunk_lse.append(torch.logsumexp(log_w, dim=0))          # (n,)
            results.append(torch.logsumexp(torch.stack(chunk_lse), dim=0) - math.log(k))
    return torch.cat(results).numpy() if results else np.zeros(0, dtype=np.float64)
