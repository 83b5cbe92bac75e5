"""The sampling layer (reparameterization trick) and projectAndReshape."""
import math

import pytest
import torch

from vae_course.layers import ProjectAndReshape, SamplingLayer, reparameterize, split_stats


def test_reparameterize_has_the_requested_mean_and_variance():
    n = 50_000
    mu = torch.tensor([1.5, -2.0, 0.0])
    var = torch.tensor([0.25, 4.0, 1.0])
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu.expand(n, 3), var.log().expand(n, 3), generator=g)
    standard_error = (var / n).sqrt()
    assert ((z.mean(0) - mu).abs() < 4 * standard_error).all()
    # The sample variance of a normal has standard error var * sqrt(2 / (n - 1)).
    assert ((z.var(0) - var).abs() < 4 * var * math.sqrt(2 / (n - 1))).all()


def test_reparameterize_is_reproducible_with_a_generator():
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    a = reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    b = reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    c = reparameterize(mu, logvar, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampling_layer_splits_mu_first_then_logvar():
    mu = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    logvar = torch.full((2, 2), -60.0)  # sigma = exp(-30): z is mu to float precision
    z, mu_out, logvar_out = SamplingLayer()(torch.cat([mu, logvar], dim=1))
    assert torch.equal(mu_out, mu) and torch.equal(logvar_out, logvar)
    assert torch.allclose(z, mu)


def test_gradients_reach_mu_and_logvar_through_the_sampling_layer():
    torch.manual_seed(0)
    stats = torch.randn(5, 8, requires_grad=True)
    z, mu, logvar = SamplingLayer()(stats)
    mu.retain_grad()
    logvar.retain_grad()
    z.sum().backward()
    # z = mu + exp(logvar / 2) * eps: dz/dmu = 1, dz/dlogvar = (z - mu) / 2.
    assert torch.equal(mu.grad, torch.ones_like(mu))
    assert torch.allclose(logvar.grad, 0.5 * (z - mu).detach())
    assert (logvar.grad != 0).all()
    assert (stats.grad != 0).all()


def test_split_stats_rejects_an_odd_width():
    with pytest.raises(ValueError, match="2\\*latent_dim"):
        split_stats(torch.zeros(2, 5))


def test_project_and_reshape_is_a_linear_layer_viewed_as_an_image():
    layer = ProjectAndReshape(16, (64, 7, 7))
    z = torch.randn(3, 16)
    out = layer(z)
    assert out.shape == (3, 64, 7, 7)
    assert torch.equal(out.reshape(3, -1), layer.linear(z))
    assert sum(p.numel() for p in layer.parameters()) == 16 * 3136 + 3136


def test_project_and_reshape_rejects_a_bad_shape():
    with pytest.raises(ValueError, match="channels, height, width"):
        ProjectAndReshape(16, (7, 64))
