"""The tolerance policy (vae_course.tolerances): each rule accepts what rounding does and
rejects what a bug does."""
import pytest
import torch

from vae_course.tolerances import ADAM_STEP_BOUND, assert_close_after_steps, assert_one_pass_close


def test_one_pass_accepts_a_sum_taken_in_another_order():
    g = torch.Generator().manual_seed(0)
    terms = torch.randn(64, 10_000, generator=g)
    forward = terms.sum(dim=1)
    backward = terms.flip(1).cumsum(dim=1)[:, -1]        # the same sums, in the reverse order
    assert not torch.equal(forward, backward)              # float32 rounding really differs...
    assert_one_pass_close(backward, forward, "sums")     # ...and the rule allows for it


def test_one_pass_rejects_a_real_error_and_names_it():
    expected = torch.linspace(1, 2, 100)
    wrong = expected.clone()
    wrong[7] *= 1.001
    with pytest.raises(AssertionError, match=r"grads: 1 of 100 elements.*element 7"):
        assert_one_pass_close(wrong, expected, "grads")
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_one_pass_close(expected[:5], expected)


def _adam(params: torch.Tensor, grads: list[torch.Tensor], lr: float) -> torch.Tensor:
    p = params.clone().requires_grad_()
    opt = torch.optim.Adam([p], lr=lr)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


def test_after_steps_accepts_adam_amplifying_rounding_of_a_near_zero_gradient():
    g = torch.Generator().manual_seed(1)
    start = torch.randn(1000, generator=g)
    grads = [torch.randn(1000, generator=g) for _ in range(3)]
    noisy = [x.clone() for x in grads]
    for x in noisy:
        x[0] = 1e-6                # a gradient that is zero up to rounding...
    for x in grads:
        x[0] = -1e-6               # ...rounds the other way in the other run
    a, b = _adam(start, grads, 1e-3), _adam(start, noisy, 1e-3)
    assert (a - b).abs()[0] > 1e-3  # a full step apart: rule 2 would fail
    with pytest.raises(AssertionError):
        assert_one_pass_close(a, b)
    assert_close_after_steps(a, b, lr=1e-3, steps=3)
    assert_close_after_steps([a[:500], a[500:]], [b[:500], b[500:]], lr=1e-3, steps=3)


def test_after_steps_rejects_a_weight_beyond_adams_reach_and_a_drifting_bulk():
    b = torch.zeros(1000)
    too_far = b.clone()
    too_far[3] = 2 * 3 * ADAM_STEP_BOUND * 1e-3 * 1.01
    with pytest.raises(AssertionError, match="more than 3 Adam steps"):
        assert_close_after_steps(too_far, b, lr=1e-3, steps=3)
    drifted = b + 1e-4             # every weight a tenth of a step off: a different run
    with pytest.raises(AssertionError, match="only 0.00% of the weights"):
        assert_close_after_steps(drifted, b, lr=1e-3, steps=3)
    with pytest.raises(AssertionError, match="999 vs 1000"):
        assert_close_after_steps(b[:999], b, lr=1e-3, steps=3)
