"""How close is close enough: the course's tolerance policy for comparing numbers.

The tests, the chapters' checks and ``vae-course doctor`` all compare numbers with these three
rules, so a check never depends on the CPU, the thread count or the GPU it happens to run on.

1. **Exactly equal** - the *same* computation repeated in one process (same device, same
   threads): the same seed twice, a checkpoint round trip, a resumed run against one that
   was never interrupted.  Compare with ``torch.equal``; any difference is a bug.

2. **One float32 pass** (:func:`assert_one_pass_close`) - one forward/backward computed along
   another path: another instruction set (AVX2, AVX-512) or thread count, channels-last
   against contiguous, a GPU against the CPU, a hand-written formula against the library's.
   Each value is a sum of many rounded float32 products, added in an order that depends on
   the kernel.  Reordering a sum of ``n`` terms moves it by about ``sqrt(n)`` rounding units
   of the *largest terms*, not of the result, so the tolerance is relative to the size of the
   values compared: ``|a - b| <= ONE_PASS_RTOL * (|b| + max|b|)``.  With float32's unit
   roundoff 6e-8 and up to ~10^4 terms per value (784 pixels x 32 channels x 3 x 3 ...), that
   is a few 1e-6; ``ONE_PASS_RTOL = 1e-5`` leaves a margin of a few times.

3. **After optimizer steps** (:func:`assert_close_after_steps`) - weights trained along two
   such paths.  Adam divides each gradient by its running root-mean-square, so a weight
   whose gradient is nearly zero (a sum that cancels) turns rounding noise into a step of up
   to ``ADAM_STEP_BOUND * lr`` (Kingma & Ba 2015, section 2.1).  So: every weight lies
   within what ``steps`` such steps can do to two runs, and the bulk of the model - 99 % of
   all its weights - differs by less than 1 % of a step per step (measured here: 99.9 % of
   the weights of every recipe within 1.6 % of ``lr`` after 3 steps, the largest 13 %).
   Losses are compared with rule 2.
"""
from __future__ import annotations

import math

import torch

ONE_PASS_RTOL = 1e-5
# Kingma & Ba (2015), section 2.1: |step| <= lr * (1 - beta1) / sqrt(1 - beta2) when
# (1 - beta1) > sqrt(1 - beta2), else <= lr.  For Adam's defaults (0.9, 0.999): 3.16 * lr.
ADAM_STEP_BOUND = (1 - 0.9) / math.sqrt(1 - 0.999)
BULK_FRACTION = 0.99     # after steps: this share of all the weights ...
BULK_STEP_SHARE = 0.01   # ... differs by less than this share of lr per step


def _flat(values) -> torch.Tensor:
    """A tensor, or several (a model's parameters, a state dict's values), as one float64 vector."""
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, torch.Tensor) or not isinstance(values, (list, tuple)) \
            or not values or not isinstance(values[0], torch.Tensor):
        return torch.as_tensor(values).detach().cpu().double().flatten()
    return torch.cat([torch.as_tensor(v).detach().cpu().double().flatten() for v in values])


def _as_tensors(actual, expected) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.as_tensor(actual).detach().cpu().double()
    b = torch.as_tensor(expected).detach().cpu().double()
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return a, b


def one_pass_mismatch(actual, expected, rtol: float = ONE_PASS_RTOL) -> torch.Tensor:
    """Boolean mask of the elements that break rule 2 (see the module docstring)."""
    a, b = _as_tensors(actual, expected)
    scale = b.abs().max() if b.numel() else torch.tensor(0.0, dtype=torch.float64)
    return (a - b).abs() > rtol * (b.abs() + scale)


def assert_one_pass_close(actual, expected, what: str = "values", rtol: float = ONE_PASS_RTOL) -> None:
    """Rule 2: ``actual`` equals ``expected`` up to float32 rounding of one forward/backward pass."""
    bad = one_pass_mismatch(actual, expected, rtol)
    if bad.any():
        a, b = _as_tensors(actual, expected)
        worst = int((a - b).abs().flatten().argmax())
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.numel()} elements differ by more than float32 "
            f"rounding of one pass (rtol {rtol:g} of the values' size); largest difference "
            f"{float((a - b).abs().flatten()[worst]):.3g} at element {worst} "
            f"({float(a.flatten()[worst]):.6g} vs {float(b.flatten()[worst]):.6g})")


def assert_close_after_steps(actual, expected, *, lr: float, steps: int, what: str = "weights") -> None:
    """Rule 3: weights after ``steps`` Adam steps at learning rate ``lr`` along two float32 paths.

    ``actual`` and ``expected`` are tensors or lists of them (e.g. ``list(model.parameters())``):
    the bulk is judged over all of them together.
    """
    a, b = _flat(actual), _flat(expected)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: {a.numel()} vs {b.numel()} weights")
    if not a.numel():
        return
    diff = (a - b).abs()
    bound = 2 * steps * ADAM_STEP_BOUND * lr
    if float(diff.max()) > bound:
        raise AssertionError(f"{what}: a weight differs by {float(diff.max()):.3g}, more than {steps} "
                             f"Adam steps of lr={lr:g} can move two runs apart ({bound:.3g})")
    small = BULK_STEP_SHARE * steps * lr
    share = float((diff <= small).double().mean())
    if share < BULK_FRACTION:
        raise AssertionError(f"{what}: only {share:.2%} of the weights agree to {small:.2g} "
                             f"({BULK_STEP_SHARE:.0%} of a step per step); at least "
                             f"{BULK_FRACTION:.0%} should after {steps} steps")
