"""Checks of chapter 7's exercises (testing; ``notebooks/07_testing.ipynb``)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..grading import as_array, call, close, expect, known_slip, run_check


def check_reconstruction_errors(fn: Callable) -> None:
    """``fn(model, x) -> (N,)`` per-image mean squared error of the model's reconstruction
    (an array or a tensor, without gradients, as the exercise asks)."""
    from ..evaluate import reconstruction_errors
    from ..models import build_model

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
