"""Evaluation: test ELBO, reconstruction errors, latent means and the IWAE bound on log p(x)."""
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from vae_course.evaluate import encode_means, evaluate_elbo, iwae_log_likelihood, reconstruction_errors
from vae_course.losses import elbo_terms, kl_monte_carlo, log_normal_pdf
from vae_course.models import build_model
from vae_course.tolerances import assert_one_pass_close


def _model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_model("mlp", **{"hidden": [16], "latent_dim": 2, **kwargs})


def _images(n=50, seed=0, binary=False):
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    return (x > 0.5).float() if binary else x


def test_evaluate_elbo_is_the_training_loss_averaged_over_images():
    model, x = _model(), _images(50)
    model.train()
    torch.manual_seed(1)
    result = evaluate_elbo(model, x, reconstruction="half-sse", kl="closed-form", beta=0.5, batch_size=20)
    assert model.training  # the mode is restored
    assert set(result) == {"loss", "reconstruction", "kl"}
    assert all(isinstance(v, float) for v in result.values())
    torch.manual_seed(1)  # same draws of z, batch by batch
    with torch.no_grad():
        terms = [elbo_terms(model(x[i:i + 20]), x[i:i + 20], reconstruction="half-sse", kl="closed-form",
                            beta=0.5) for i in range(0, 50, 20)]
    for name in ("loss", "reconstruction", "kl"):
        expected = torch.cat([getattr(t, name) for t in terms]).double().mean().item()
        assert_one_pass_close(result[name], expected, name)  # float64 sums in another order
    # Each image's loss is its reconstruction + beta*KL rounded to float32: equal up to that rounding.
    assert_one_pass_close(result["loss"], result["reconstruction"] + 0.5 * result["kl"], "loss")


def test_evaluate_elbo_binarizes_like_training():
    model, x = _model(), _images(30)
    torch.manual_seed(2)
    static = evaluate_elbo(model, x, reconstruction="bernoulli", kl="closed-form", binarize="static")
    torch.manual_seed(2)
    thresholded = evaluate_elbo(model, (x > 0.5).float(), reconstruction="bernoulli", kl="closed-form")
    assert static == thresholded
    torch.manual_seed(3)
    dynamic = evaluate_elbo(model, x, reconstruction="bernoulli", kl="closed-form", binarize="dynamic")
    torch.manual_seed(3)
    assert evaluate_elbo(model, x, reconstruction="bernoulli", kl="closed-form", binarize="dynamic") == dynamic
    with pytest.raises(ValueError, match="binarize"):
        evaluate_elbo(model, x, reconstruction="bernoulli", kl="closed-form", binarize="yes")


def test_reconstruction_errors_and_encode_means():
    model, x = _model(), _images(30)
    errors = reconstruction_errors(model, x, batch_size=7)
    assert isinstance(errors, np.ndarray) and errors.shape == (30,)
    with torch.no_grad():
        expected = (model.reconstruct(x) - x).pow(2).mean(dim=(1, 2, 3)).numpy()
        mu, _ = model.encode(x)
    np.testing.assert_allclose(errors, expected, rtol=1e-6)
    means = encode_means(model, x, batch_size=7)
    assert means.shape == (30, 2)
    np.testing.assert_allclose(means, mu.numpy(), rtol=1e-5, atol=1e-6)


def test_conditional_models_need_labels():
    torch.manual_seed(0)
    cvae = build_model("cvae-mlp", hidden=[16], latent_dim=2)
    x, y = _images(20), torch.arange(20) % 10
    with pytest.raises(ValueError, match="y="):
        evaluate_elbo(cvae, x, reconstruction="bernoulli", kl="closed-form")
    assert math.isfinite(evaluate_elbo(cvae, x, y=y, reconstruction="bernoulli", kl="closed-form")["loss"])
    assert reconstruction_errors(cvae, x, y=y).shape == (20,)
    assert encode_means(cvae, x, y=y).shape == (20, 2)
    with pytest.raises(ValueError, match="conditional"):
        iwae_log_likelihood(cvae, (x > 0.5).float(), k=2)


def test_iwae_with_one_sample_is_the_single_sample_elbo():
    """k = 1: log p(x|z) + log p(z) - log q(z|x) at one z ~ q, i.e. minus the Monte Carlo ELBO loss."""
    model, x = _model(), _images(6, binary=True)
    got = iwae_log_likelihood(model, x, k=1, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn((1, *mu.shape), generator=torch.Generator().manual_seed(4))[0]
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = model.decode_logits(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3))
        expected = -(recon + kl_monte_carlo(z, mu, logvar))
    assert got.shape == (6,) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected.double().numpy(), rtol=1e-5)


def test_iwae_k1_averages_to_the_elbo():
    """In expectation over z, the k = 1 bound equals the ELBO with the closed-form KL."""
    model, x = _model(), _images(4, binary=True)
    copies = x.repeat(500, 1, 1, 1)  # 500 independent one-sample estimates per image
    torch.manual_seed(0)
    single = iwae_log_likelihood(model, copies, k=1, batch_size=1000)
    elbo = -np.array([evaluate_elbo(model, xi.expand(2000, 1, 28, 28), reconstruction="bernoulli",
                                    kl="closed-form")["loss"] for xi in x])
    per_image = single.reshape(500, 4)
    stderr = per_image.std(axis=0) / math.sqrt(500)
    assert np.all(np.abs(per_image.mean(axis=0) - elbo) < 5 * stderr + 0.05)


def _exact_log_px(model, x, lo=-9.0, hi=9.0, points=6001):
    """log p(x) = log integral p(x|z) p(z) dz by quadrature on a grid, for a 1-D latent space."""
    z = torch.linspace(lo, hi, points).unsqueeze(1)
    with torch.no_grad():
        logits = model.decode_logits(z)                                          # (points, 1, 28, 28)
        log_joint = torch.stack([
            -F.binary_cross_entropy_with_logits(logits, xi.expand_as(logits), reduction="none").sum(dim=(1, 2, 3))
            + log_normal_pdf(z, 0.0, 0.0) for xi in x]).double()               # (N, points)
    return (torch.logsumexp(log_joint, dim=1) + math.log((hi - lo) / (points - 1))).numpy()


def test_iwae_rises_with_k_and_stays_above_the_elbo():
    model, x = _model(), _images(20, binary=True)  # untrained: q(z|x) is far from the posterior
    elbo = -np.mean([evaluate_elbo(model, xi.expand(500, 1, 28, 28), reconstruction="bernoulli",
                                   kl="closed-form")["loss"] for xi in x])
    generator = torch.Generator().manual_seed(0)
    bounds = [iwae_log_likelihood(model, x, k=k, generator=generator).mean() for k in (1, 10, 100, 1000)]
    assert abs(bounds[0] - elbo) < 15  # k = 1 is one noisy ELBO sample per image
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3], bounds
    assert bounds[3] > elbo + 10, (elbo, bounds)


def test_iwae_approaches_the_exact_likelihood():
    """A 1-D latent space, where log p(x) is a 1-D integral.  The bound holds for any q; we
    make q(z|x) = N(0, 1.5^2) so that it covers the posterior and the weights have a finite
    variance: then k = 3000 samples estimate log p(x) well (a poor q gives heavy-tailed weights)."""
    model, x = _model(latent_dim=1, hidden=[8]), _images(5, binary=True)
    head = model.encoder[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, math.log(1.5 ** 2)]))
    exact = _exact_log_px(model, x)
    elbo = -np.mean([evaluate_elbo(model, xi.expand(1000, 1, 28, 28), reconstruction="bernoulli",
                                   kl="closed-form")["loss"] for xi in x])
    bound = iwae_log_likelihood(model, x, k=3000, chunk=300, generator=torch.Generator().manual_seed(0))
    assert elbo < exact.mean() - 5  # a loose q: the ELBO is far below log p(x) ...
    np.testing.assert_allclose(bound, exact, atol=0.3)  # ... the IWAE bound is not
    assert abs(bound.mean() - exact.mean()) < 0.1


def test_iwae_checks_its_input():
    model = _model()
    with pytest.raises(ValueError, match="binary"):
        iwae_log_likelihood(model, _images(3), k=5)
    with pytest.raises(ValueError, match="k must"):
        iwae_log_likelihood(model, _images(3, binary=True), k=0)
    model.train()
    out = iwae_log_likelihood(model, _images(7, binary=True), k=11, batch_size=3, chunk=4)
    assert out.shape == (7,) and np.isfinite(out).all() and model.training


def test_a_conv_model_is_evaluated_channels_last_on_the_cpu_and_keeps_its_own_layout():
    """inference() runs a CPU conv model channels-last (oneDNN's fast layout), the same values to
    float32 rounding, and hands the model back in the layout it came in: a run of
    fit(channels_last=False) must not switch layout after its first test evaluation."""
    torch.manual_seed(0)
    model = build_model("matlab-2022", latent_dim=4)
    x = _images(40)
    convs = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    seen = []
    model.decoder.register_forward_hook(
        lambda module, args, out: seen.append(all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)))
    with torch.no_grad():
        expected = model.reconstruct(x)  # the default layout, computed directly
    errors = reconstruction_errors(model, x, batch_size=16)
    assert seen[-1] is True                                      # evaluated channels-last
    assert all(w.is_contiguous() for w in convs)                  # and handed back contiguous
    manual = (expected - x).pow(2).flatten(1).mean(dim=1).numpy()
    assert_one_pass_close(errors, manual, "per-image MSE, channels-last vs contiguous")
    model.to(memory_format=torch.channels_last)                   # a model fit left channels-last
    reconstruction_errors(model, x)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
