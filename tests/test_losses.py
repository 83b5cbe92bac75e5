"""KL divergences, reconstruction terms, the ELBO and the Gaussian reading of squared errors."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

from vae_course.losses import (RECONSTRUCTION, ELBOTerms, bernoulli_nll, elbo_terms,
                               gaussian_equivalent, gaussian_nll, half_sse, kl_monte_carlo,
                               kl_normal, log_normal_pdf, mean_mse)
from vae_course.vae import VAEOutput


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=g)
    logits = torch.randn(4, 1, 28, 28, generator=g)
    return logits, x


@pytest.fixture
def output():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(4, 3, generator=g)
    logvar = 0.5 * torch.randn(4, 3, generator=g)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(4, 3, generator=g)
    logits = torch.randn(4, 1, 28, 28, generator=g)
    return VAEOutput(logits, z, mu, logvar)


def test_kl_is_zero_when_the_posterior_is_the_prior():
    assert torch.equal(kl_normal(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))


def test_kl_normal_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert kl_normal(mu, logvar).shape == (6,)
    assert torch.allclose(kl_normal(mu, logvar), expected, atol=1e-5)


def test_closed_form_kl_agrees_with_the_monte_carlo_average():
    g = torch.Generator().manual_seed(3)
    n_examples, latent, draws = 3, 4, 20_000
    mu = torch.randn(n_examples, latent, generator=g, dtype=torch.float64)
    logvar = torch.randn(n_examples, latent, generator=g, dtype=torch.float64)
    mu_k = mu.repeat(draws, 1)  # (draws * n_examples, latent)
    logvar_k = logvar.repeat(draws, 1)
    z = mu_k + (0.5 * logvar_k).exp() * torch.randn(mu_k.shape, generator=g, dtype=torch.float64)
    estimates = kl_monte_carlo(z, mu_k, logvar_k).view(draws, n_examples)
    standard_error = estimates.std(0) / math.sqrt(draws)
    assert ((estimates.mean(0) - kl_normal(mu, logvar)).abs() < 4 * standard_error).all()


def test_log_normal_pdf_matches_torch_distributions_and_accepts_numbers():
    g = torch.Generator().manual_seed(4)
    z, mean, logvar = (torch.randn(5, 3, generator=g) for _ in range(3))
    expected = Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(1)
    assert torch.allclose(log_normal_pdf(z, mean, logvar), expected, atol=1e-5)
    assert torch.allclose(log_normal_pdf(z, 0.0, 0.0), Normal(0.0, 1.0).log_prob(z).sum(1))


def test_bernoulli_nll_equals_bce_computed_from_probabilities(images):
    logits, x = (t.double() for t in images)
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=(1, 2, 3))
    per_image = F.binary_cross_entropy(p, x, reduction="none").sum(dim=(1, 2, 3))
    assert bernoulli_nll(logits, x).shape == (4,)
    assert torch.allclose(bernoulli_nll(logits, x), by_hand)
    assert torch.allclose(bernoulli_nll(logits, x), per_image)


def test_half_sse_is_matlabs_mse_on_the_docs_example():
    # MATLAB's mse docs: one 6x6x1 observation, loss = 1/(2N) * sum((Y - T).^2) with N = 1.
    rng = np.random.default_rng(0)
    y, t = rng.random((6, 6)), rng.random((6, 6))
    matlab = ((y - t) ** 2).sum() / (2 * 1)
    got = half_sse(torch.from_numpy(y)[None, None], torch.from_numpy(t)[None, None])
    assert got.shape == (1,)
    assert got.item() == pytest.approx(matlab, rel=1e-12)


def test_half_sse_batch_mean_is_matlabs_normalisation_by_observations():
    rng = np.random.default_rng(1)
    y, t = rng.random((5, 1, 6, 6)), rng.random((5, 1, 6, 6))
    matlab = ((y - t) ** 2).sum() / (2 * 5)
    assert half_sse(torch.from_numpy(y), torch.from_numpy(t)).mean().item() == pytest.approx(matlab)


def test_mean_mse_is_nn_mseloss_per_image(images):
    logits, x = images
    x_hat = torch.sigmoid(logits)
    per_image = torch.stack([nn.MSELoss()(x_hat[i], x[i]) for i in range(4)])
    assert torch.allclose(mean_mse(x_hat, x), per_image)
    assert torch.allclose(mean_mse(x_hat, x).mean(), nn.MSELoss()(x_hat, x))
    assert torch.allclose(mean_mse(x_hat, x), half_sse(x_hat, x) / (784 / 2))


def test_gaussian_nll_at_sigma_one_is_half_sse_plus_the_constant(images):
    logits, x = (t.double() for t in images)
    x_hat = torch.sigmoid(logits)
    expected = half_sse(x_hat, x) + 784 * 0.5 * math.log(2 * math.pi)
    assert torch.allclose(gaussian_nll(x_hat, x, 1.0), expected)


def test_gaussian_nll_matches_torch_distributions(images):
    logits, x = (t.double() for t in images)
    x_hat = torch.sigmoid(logits)
    expected = -Normal(x_hat, 0.3).log_prob(x).sum(dim=(1, 2, 3))
    assert torch.allclose(gaussian_nll(x_hat, x, 0.3), expected)
    with pytest.raises(ValueError, match="positive"):
        gaussian_nll(x_hat, x, 0.0)


def test_reconstruction_terms_refuse_mismatched_shapes():
    for name, fn in RECONSTRUCTION.items():
        args = (1.0,) if name == "gaussian" else ()
        with pytest.raises(ValueError, match="same shape"):
            fn(torch.zeros(2, 784), torch.zeros(2, 1, 28, 28), *args)


def test_elbo_terms_weights_the_kl_by_beta(output):
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    terms = elbo_terms(output, x, reconstruction="half-sse", beta=0.25)
    assert isinstance(terms, ELBOTerms) and terms.loss.shape == (4,)
    assert torch.allclose(terms.reconstruction, half_sse(torch.sigmoid(output.logits), x))
    assert torch.allclose(terms.kl, kl_normal(output.mu, output.logvar))
    assert torch.allclose(terms.loss, terms.reconstruction + 0.25 * terms.kl)
    assert torch.allclose(elbo_terms(output, x, beta=0.0).loss, terms.reconstruction)


def test_elbo_terms_picks_the_right_inputs_for_each_term(output):
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    bern = elbo_terms(output, x, reconstruction="bernoulli", kl="monte-carlo")
    assert torch.allclose(bern.reconstruction, bernoulli_nll(output.logits, x))
    assert torch.allclose(bern.kl, kl_monte_carlo(output.z, output.mu, output.logvar))
    mse = elbo_terms(output, x, reconstruction="mean-mse", beta=0.001)
    assert torch.allclose(mse.reconstruction, mean_mse(torch.sigmoid(output.logits), x))
    gauss = elbo_terms(output, x, reconstruction="gaussian", sigma=0.5)
    assert torch.allclose(gauss.reconstruction, gaussian_nll(torch.sigmoid(output.logits), x, 0.5))


def test_elbo_terms_rejects_bad_names_and_lists_the_options(output):
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match="bernoulli, gaussian, half-sse, mean-mse"):
        elbo_terms(output, x, reconstruction="l1")
    with pytest.raises(ValueError, match="closed-form, monte-carlo"):
        elbo_terms(output, x, kl="analytic")
    with pytest.raises(ValueError, match="needs sigma"):
        elbo_terms(output, x, reconstruction="gaussian")
    with pytest.raises(ValueError, match="sigma only applies"):
        elbo_terms(output, x, reconstruction="half-sse", sigma=1.0)


def test_gaussian_equivalent_readings():
    assert gaussian_equivalent("half-sse", 1.0) == {
        "sigma2": 1.0, "beta": 1.0, "beta_at_sigma2_1": 1.0, "sigma2_at_beta_1": 1.0}
    blog = gaussian_equivalent("mean-mse", 0.001)
    assert blog["sigma2"] == 392.0 and blog["beta"] == 0.001
    assert blog["beta_at_sigma2_1"] == pytest.approx(0.392)
    assert gaussian_equivalent("gaussian", 2.0, sigma=0.1)["beta_at_sigma2_1"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="no Gaussian reading"):
        gaussian_equivalent("bernoulli", 1.0)


def test_gaussian_equivalent_losses_are_the_same_objective_up_to_scale(output):
    # mean_mse + w KL == (2 / D) * (half_sse + tau KL) with tau = beta_at_sigma2_1.
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    w = 0.001
    tau = gaussian_equivalent("mean-mse", w)["beta_at_sigma2_1"]
    blog = elbo_terms(output, x, reconstruction="mean-mse", beta=w).loss
    rescaled = elbo_terms(output, x, reconstruction="half-sse", beta=tau).loss * (2 / 784)
    assert torch.allclose(blog, rescaled)
