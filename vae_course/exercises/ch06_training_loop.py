"""Checks of chapter 6's exercises (training; ``notebooks/06_training_loop.ipynb``)."""
from __future__ import annotations

import numbers
from typing import Callable

import numpy as np
import torch

from ..grading import Fail, call, close, expect, known_slip, run_check


def check_training_step(fn: Callable) -> None:
    """``fn(model, optimizer, x) -> loss``, a Python float: one step of the MATLAB loop (half-SSE + KL)."""
    from ..losses import elbo_terms
    from ..models import build_model

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
