"""Posterior collapse, diagnosed: which latent dimensions a trained VAE actually uses.

A VAE can reach a good ELBO while ignoring some (or all) of its code: for a collapsed
dimension the encoder returns the prior, q(z_d|x) = N(0, 1) for every image, so the KL term
pays nothing for it and the decoder learns nothing from it.  The loss alone does not show
this.  These numbers do, each computed on a set of images ``x`` ``(N, 1, 28, 28)``:

- ``kl_per_dimension``: the KL term split over the latent dimensions; ~0 means collapsed;
- ``active_units``: dimensions whose posterior mean moves with x (Burda et al., 2016);
- ``mutual_information``: how many nats about x the code carries (Hoffman & Johnson, 2016);
- ``rate_distortion``: the ELBO's two terms (Alemi et al., 2018), and the IWAE - ELBO gap,
  how much a better posterior approximation would gain (Burda et al., 2016);
- ``bits_per_dim``: the nats per image divided by 784 ln 2, the unit papers compare in.

``diagnose`` runs them all with a recipe's loss settings and returns a plain dict;
``report`` prints it as a table (``vae-course diagnose CHECKPOINT`` shows it).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .data import BINARIZE_MODES, binarized
from .evaluate import DYNAMIC_TEST_SEED, _batches, iwae_log_likelihood
from .losses import KL_ESTIMATORS, RECONSTRUCTION, elbo_terms
from .vae import NUM_PIXELS, VAEOutput

ACTIVE_THRESHOLD = 0.01   # Burda et al. (2016): a unit is active when Var_x E[z_u|x] > 0.01
LIKELIHOODS = ("bernoulli", "gaussian")  # reconstruction terms that are -log p(x|z) in nats
UNITS = {"bernoulli": "nats", "gaussian": "nats",
         "half-sse": "half squared error (Gaussian sigma=1 NLL less its constant)",
         "mean-mse": "per-pixel mean squared error"}


def bits_per_dim(nats: float, num_pixels: int = NUM_PIXELS) -> float:
    """Nats per image -> bits per pixel: ``nats / (num_pixels * ln 2)``.

    Papers report likelihoods this way so that images of different sizes compare;
    a binarized-MNIST model at 80 nats per image is 80 / (784 ln 2) = 0.147 bits/dim.
    """
    return nats / (num_pixels * math.log(2))


def posterior(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
              batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's ``(mu, logvar)`` for every image, float64 on the CPU, each ``(N, L)``.

    Everything below is a statistic of these two tables; float64 because the mutual
    information subtracts log-densities of hundreds of nats.  ``x`` is used as given:
    binarize it first as the model was trained (``diagnose`` does).
    """
    mus, logvars = [], []
    for xb, labels in _batches(model, x, y, batch_size, "posterior"):
        mu, logvar = model.encode(xb, *labels)
        mus.append(mu.cpu().double())
        logvars.append(logvar.cpu().double())
    return torch.cat(mus), torch.cat(logvars)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over images of KL( q(z_d|x) || N(0, 1) ) for each dimension d, shape ``(L,)``.

    The closed form of :func:`vae_course.losses.kl_normal` before its sum over dimensions,
    so these sum to the KL term.  A dimension near 0 nats is collapsed: its posterior is the
    prior for (nearly) every image.
    """
    return (0.5 * (torch.exp(logvar) + mu.pow(2) - 1.0 - logvar)).mean(dim=0)


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> dict:
    """Burda, Grosse & Salakhutdinov (2016): unit u is active when A_u = Cov_x(E_q(z|x)[z_u]) > threshold.

    A dimension whose posterior mean does not move with the image carries no information
    about it, whatever its KL (a constant mean away from 0 costs KL but says nothing).
    Returns ``{"count", "variance" (per dim), "active" (per dim), "threshold"}``; the variance
    over images is the unbiased one (N - 1), so ``mu`` needs at least two images.
    """
    if len(mu) < 2:
        raise ValueError(f"active_units: the variance over images needs at least 2 images, got {len(mu)}")
    variance = mu.var(dim=0)
    active = variance > threshold
    return {"count": int(active.sum()), "variance": variance.tolist(), "active": active.tolist(),
            "threshold": float(threshold)}


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                       max_elements: int = 2 ** 22) -> float:
    """I(x; z) under the aggregate posterior q(z) = (1/N) sum_j q(z|x_j), in nats.

    The standard minibatch estimator (Hoffman & Johnson 2016, "ELBO surgery"; the code of
    He et al. 2019): with one draw z_i ~ q(z|x_i) per image,

        I = (1/N) sum_i [ log q(z_i|x_i) - log (1/N) sum_j q(z_i|x_j) ] = E_x KL(q(z|x) || q(z)),

    both terms at the same z_i, so for identical posteriors (collapse) it is exactly 0.  Its
    bias: x is taken to be uniform over the N images, and the j = i term alone bounds each
    summand by log N, so the estimate is at most log N: a model that tells all N images apart
    scores log N, however much more it would tell apart on a larger set.  In expectation it is a
    lower bound on I(x; z) under the data distribution (it is InfoNCE with the true density as
    critic; Poole et al. 2019), tight only when I << log N; compare numbers only at equal N.
    The N x N table of log q(z_i|x_j) is built ``max_elements`` numbers at a time (32 MB blocks).
    """
    n, dims = mu.shape
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)  # CPU, like mu here
    z = mu + std * eps
    log_qz_x = (-0.5 * (eps ** 2 + logvar + math.log(2 * math.pi))).sum(dim=1)  # log q(z_i|x_i)
    rows = max(1, max_elements // max(1, n * dims))
    log_qz = []
    for start in range(0, n, rows):
        zi = z[start:start + rows, None, :]                                      # (r, 1, L)
        log_q = -0.5 * ((zi - mu) ** 2 / std ** 2 + logvar + math.log(2 * math.pi))  # (r, N, L)
        log_qz.append(torch.logsumexp(log_q.sum(dim=2), dim=1) - math.log(n))  # log q(z_i)
    return float((log_qz_x - torch.cat(log_qz)).mean())


def rate_distortion(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                    reconstruction: str, sigma: float | None = None, batch_size: int = 1000,
                    generator: torch.Generator | None = None) -> dict[str, float]:
    """The ELBO's two terms, means over images: ``rate`` (the KL, nats) and ``distortion``
    (the reconstruction term with one z ~ q(z|x) per image, in the recipe's units).

    The rate is always the closed-form KL: a recipe that trains with the Monte Carlo
    estimator (``kl="monte-carlo"``) estimates this same number with noise.  For a
    likelihood (``"bernoulli"``, ``"gaussian"``) rate + distortion is the negative ELBO in nats.
    """
    totals = torch.zeros(2, dtype=torch.float64)
    for xb, labels in _batches(model, x, y, batch_size, "rate_distortion"):
        mu, logvar = model.encode(xb, *labels)
        z = model.reparameterize(mu, logvar, generator)
        out = VAEOutput(model.decode_logits(z, *labels), z, mu, logvar)
        terms = elbo_terms(out, xb, reconstruction=reconstruction, kl="closed-form", sigma=sigma)
        totals += torch.stack((terms.kl, terms.reconstruction)).cpu().double().sum(dim=1)
    rate, distortion = (totals / len(x)).tolist()
    return {"rate": rate, "distortion": distortion}


def iwae_gap_note(model: nn.Module, x: torch.Tensor, reconstruction: str) -> str | None:
    """Why the IWAE bound cannot be computed here, or None when it can.

    ``evaluate.iwae_log_likelihood`` uses the Bernoulli likelihood of binary pixels and an
    unconditional model; for any other loss an "IWAE - ELBO gap" would be a number in mixed
    units, not a statement about the posterior approximation.
    """
    if reconstruction != "bernoulli":
        return (f"no IWAE bound: reconstruction={reconstruction!r} is not the Bernoulli likelihood "
                f"the bound needs (for half-sse/mean-mse the loss is not a log-likelihood in nats)")
    if getattr(model, "conditional", False):
        return "no IWAE bound: the model is conditional (the bound would be log p(x | y))"
    if not bool(((x == 0) | (x == 1)).all()):
        return ("no IWAE bound: the images are grey levels (binarize='none'), where the Bernoulli "
                "term is a cross-entropy, not the likelihood of the data")
    return None


def _check_settings(reconstruction: str, kl: str, binarize: str, k: int, x: torch.Tensor) -> None:
    if reconstruction not in RECONSTRUCTION:
        raise ValueError(f"diagnose: unknown reconstruction {reconstruction!r}; choose one of "
                         f"{', '.join(sorted(RECONSTRUCTION))}")
    if kl not in KL_ESTIMATORS:
        raise ValueError(f"diagnose: unknown kl {kl!r}; choose one of {', '.join(KL_ESTIMATORS)}")
    if binarize not in BINARIZE_MODES:
        raise ValueError(f"diagnose: binarize must be one of {', '.join(BINARIZE_MODES)}, got {binarize!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"diagnose: k must be a whole number of importance samples >= 0 (0: no IWAE), got {k!r}")
    if len(x) < 2:
        raise ValueError(f"diagnose: needs at least 2 images (variances over images), got {len(x)}")


def diagnose(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, reconstruction: str,
             kl: str = "closed-form", binarize: str = "none", sigma: float | None = None, k: int = 100,
             threshold: float = ACTIVE_THRESHOLD, batch_size: int = 500, seed: int = 0) -> dict:
    """Every diagnostic of posterior collapse for ``model`` on images ``x`` in [0, 1], as a plain dict.

    ``reconstruction``, ``kl``, ``binarize`` and ``sigma`` are the recipe's (a checkpoint's
    ``config["training"]``): ``x`` is binarized as in training (``"dynamic"`` draws the fixed
    test binarization that ``evaluate_elbo`` scores), and the distortion is in the recipe's
    units.  ``y``: labels, for conditional models.  ``k`` importance samples for the IWAE bound
    (0 skips it); it exists only for unconditional Bernoulli models on binary images, and
    otherwise the gap is None and ``iwae_note`` says why.  ``seed`` fixes every draw of z.

    Keys: ``kl_per_dim`` (L nats), ``kl_total``, ``active_units`` (a count), ``active`` and
    ``mean_variance`` (per dim), ``mutual_information`` and its ceiling
    ``mutual_information_max`` = log N, ``rate``, ``distortion`` (``distortion_units``),
    ``negative_elbo``, ``iwae_nll``, ``iwae_elbo_gap`` (nats; None without a likelihood),
    and ``*_bits_per_dim`` beside each number in nats.  :func:`report` prints them as a table.
    """
    _check_settings(reconstruction, kl, binarize, k, x)
    x = binarized(x, binarize, torch.Generator().manual_seed(DYNAMIC_TEST_SEED))
    mu, logvar = posterior(model, x, y, batch_size)
    kl_dims = kl_per_dimension(mu, logvar)
    units = active_units(mu, threshold)
    terms = rate_distortion(model, x, y, reconstruction=reconstruction, sigma=sigma, batch_size=batch_size,
                            generator=torch.Generator().manual_seed(seed))
    n = len(x)
    result = {
        "images": n, "latent_dim": int(mu.shape[1]), "reconstruction": reconstruction, "kl": kl,
        "binarize": binarize, "kl_per_dim": kl_dims.tolist(), "kl_total": float(kl_dims.sum()),
        "active_units": units["count"], "active_threshold": units["threshold"],
        "mean_variance": units["variance"], "active": units["active"],
        "mutual_information": mutual_information(mu, logvar, torch.Generator().manual_seed(seed + 1)),
        "mutual_information_max": math.log(n),
        "rate": terms["rate"], "distortion": terms["distortion"],
        "distortion_units": UNITS[reconstruction],
        "rate_bits_per_dim": bits_per_dim(terms["rate"]),
    }
    likelihood = reconstruction in LIKELIHOODS
    nelbo = terms["rate"] + terms["distortion"] if likelihood else None
    result["distortion_bits_per_dim"] = bits_per_dim(terms["distortion"]) if likelihood else None
    result["negative_elbo"] = nelbo
    result["negative_elbo_bits_per_dim"] = bits_per_dim(nelbo) if likelihood else None
    note = "k=0: IWAE skipped" if k == 0 else iwae_gap_note(model, x, reconstruction)
    result.update(iwae_k=k, iwae_nll=None, iwae_nll_bits_per_dim=None, iwae_elbo_gap=None, iwae_note=note)
    if note is None:
        log_px = iwae_log_likelihood(model, x, k=k, generator=torch.Generator().manual_seed(seed + 2))
        iwae_nll = -float(log_px.mean())
        result.update(iwae_nll=iwae_nll, iwae_nll_bits_per_dim=bits_per_dim(iwae_nll),
                      iwae_elbo_gap=nelbo - iwae_nll)
    return result


def _nats(value: float | None, with_bits: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:10.4f} nats" + (f"   {bits_per_dim(value):.4g} bits/dim" if with_bits else "")


def report(result: dict) -> str:
    """``diagnose``'s dict as a table: the dimensions by KL (largest first), then the totals."""
    lines = [f"{result['images']} images, reconstruction {result['reconstruction']}, kl {result['kl']}, "
             f"binarize {result['binarize']}", "",
             "  dim    KL (nats)   Var_x E[z|x]   active"]
    order = sorted(range(result["latent_dim"]), key=lambda d: -result["kl_per_dim"][d])
    for d in order:
        lines.append(f"  {d:3d}   {result['kl_per_dim'][d]:10.4f}   {result['mean_variance'][d]:12.4g}   "
                     f"{'yes' if result['active'][d] else 'no'}")
    lines += ["",
              f"active units         {result['active_units']} / {result['latent_dim']}   "
              f"(Var_x E[z_u|x] > {result['active_threshold']:g})",
              f"mutual information   {_nats(result['mutual_information'], False)}   "
              f"(estimate over {result['images']} images: at most log N = {result['mutual_information_max']:.4f})",
              f"rate (exact KL)      {_nats(result['rate'])}"]
    if result["negative_elbo"] is None:
        lines.append(f"distortion           {result['distortion']:10.4f} ({result['distortion_units']})")
    else:
        lines += [f"distortion           {_nats(result['distortion'])}",
                  f"negative ELBO        {_nats(result['negative_elbo'])}"]
    if result["iwae_note"] is None:
        lines += [f"IWAE NLL (k={result['iwae_k']})".ljust(21) + _nats(result["iwae_nll"]),
                  f"IWAE - ELBO gap      {_nats(result['iwae_elbo_gap'], False)}"]
    else:
        lines.append(f"IWAE - ELBO gap      - ({result['iwae_note']})")
    return "\n".join(lines)
