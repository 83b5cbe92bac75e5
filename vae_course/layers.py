"""The two layers the source models build by hand: the sampling layer and projectAndReshape.

MATLAB's R2022b example defines both as custom layers; here they are small ``nn.Module``s so
they can sit inside an ``nn.Sequential`` and show up in :func:`vae_course.models.layer_shapes`.
"""
from __future__ import annotations

import torch
from torch import nn

from .rng import randn


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``z ~ N(mu, exp(logvar))`` as ``z = mu + exp(0.5 * logvar) * eps``, ``eps ~ N(0, I)``.

    The *reparameterization trick*: the randomness lives in ``eps``, which does not depend
    on the parameters, so gradients flow from ``z`` back into ``mu`` and ``logvar``.
    ``generator`` makes the draw reproducible; a CPU generator draws the same ``eps`` whatever
    ``mu``'s device (see :func:`vae_course.rng.randn`).
    """
    eps = randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def split_stats(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split encoder output ``(N, 2L)`` into ``mu`` (first L columns) and ``logvar`` (last L)."""
    if stats.dim() != 2 or stats.shape[1] % 2:
        raise ValueError(f"split_stats: expected encoder output of shape (N, 2*latent_dim), "
                         f"got {tuple(stats.shape)}; the encoder's last layer must have an even "
                         f"number of outputs")
    return stats.chunk(2, dim=1)


class SamplingLayer(nn.Module):
    """MATLAB's ``samplingLayer``: stats ``(N, 2L)`` -> ``(z, mu, logvar)``.

    MATLAB calls logvar ``logSigmaSq``.  Like MATLAB's layer it samples in training *and*
    evaluation mode; use ``model.reconstruct`` (which decodes ``mu``) for a deterministic pass.
    """

    def forward(self, stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = split_stats(stats)
        return reparameterize(mu, logvar), mu, logvar


class ProjectAndReshape(nn.Module):
    """MATLAB's ``projectAndReshapeLayer``: a fully connected layer whose output is viewed as an image.

    ``ProjectAndReshape(16, (64, 7, 7))`` maps ``(N, 16)`` to ``(N, 64, 7, 7)``.  MATLAB writes
    the shape as ``[7 7 64]`` (height, width, channels); PyTorch puts channels first.
    """

    def __init__(self, in_features: int, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"ProjectAndReshape: shape must be (channels, height, width) of "
                             f"positive ints, got {shape!r}")
        channels, height, width = self.shape
        self.linear = nn.Linear(in_features, channels * height * width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z).view(z.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"in_features={self.linear.in_features}, shape={self.shape}"
