"""The Fréchet distance between two Gaussians, fitted to two sets of feature vectors.

    FD = |mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))

(the formula behind FID).  ``C1 C2`` is not symmetric, but it is similar to the symmetric
positive semi-definite ``S C2 S`` with ``S = C1^(1/2)``: ``S^-1 (S C2 S) S = C1 C2``.  So the
trace of its square root is the sum of the square roots of the eigenvalues of ``S C2 S``,
which ``eigh`` computes stably; no general matrix square root (scipy's ``sqrtm``) is needed.
Everything runs in float64; tiny negative eigenvalues from rounding are clipped to zero, so
singular covariances (e.g. ReLU features that are always zero) are fine.
"""
from __future__ import annotations

import torch


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, float64) of feature rows ``(N, D)``."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"gaussian_stats: need features of shape (N >= 2, D), got {tuple(features.shape)}")
    f = features.detach().to(torch.float64)
    return f.mean(dim=0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix, via its eigendecomposition."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def trace_sqrt_product(cov1: torch.Tensor, cov2: torch.Tensor) -> float:
    """``Tr((cov1 @ cov2)^(1/2))`` for symmetric PSD ``cov1``, ``cov2``."""
    root = psd_sqrt(cov1.to(torch.float64))
    middle = root @ cov2.to(torch.float64) @ root
    middle = (middle + middle.T) / 2  # symmetric up to rounding; make it exactly so for eigh
    return float(torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum())


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor,
                     cov2: torch.Tensor) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2); 0 for identical Gaussians."""
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (*mu1.shape, *mu1.shape):
        raise ValueError(f"frechet_distance: shapes do not match: mu {tuple(mu1.shape)} and "
                         f"{tuple(mu2.shape)}, cov {tuple(cov1.shape)} and {tuple(cov2.shape)}")
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    cov1, cov2 = cov1.to(torch.float64), cov2.to(torch.float64)
    mean_term = float((mu1 - mu2).pow(2).sum())
    cov_term = float(torch.trace(cov1) + torch.trace(cov2)) - 2 * trace_sqrt_product(cov1, cov2)
    return max(mean_term + cov_term, 0.0)  # rounding can leave -1e-12 for identical inputs


def frechet_distance_of_features(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a (N, D)`` and ``b (M, D)``."""
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
