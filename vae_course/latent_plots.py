"""Figures of the latent space (chapter 8): where the codes lie, what the decoder makes of a
grid of them, and what lies between two images.

They take the same inputs as :mod:`vae_course.plots` (arrays or tensors on any device) and
return a :class:`matplotlib.figure.Figure` with a title and labelled axes.
"""
from __future__ import annotations

from statistics import NormalDist
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .evaluate import inference
from .plots import (BOOK_WIDTH, IMAGE_STYLE, _as_images, _class_labels, _hide_ticks, _model_device,
                    _new_axes, _to_numpy, tile)


def _pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project onto the top two principal components: (projected (N, 2), variance share (2,))."""
    centred = points - points.mean(axis=0, keepdims=True)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2
    share = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    return centred @ vt[:2].T, share[:2]


def latent_scatter(means: Any, labels: Any, class_names: Sequence[str] | None = None,
                   title: str = "Posterior means of the test images", ax=None,
                   point_size: float = 4.0, alpha: float = 0.6) -> Figure:
    """Scatter of the encoder's means coloured by class. A latent space wider than 2 is
    projected onto its first two principal components (the axis labels say how much
    variance each keeps), so a 2-D picture never silently hides dimensions."""
    means = _to_numpy(means).astype(np.float64)
    if means.ndim != 2:
        raise ValueError(f"means must have shape (N, latent_dim); got {tuple(means.shape)}")
    labels = _to_numpy(labels).reshape(-1)
    if len(labels) != len(means):
        raise ValueError(f"labels has {len(labels)} entries but means has {len(means)} rows")
    latent_dim = means.shape[1]
    classes = np.unique(labels)
    if class_names is None:
        class_names = [str(c) for c in range(int(classes.max()) + 1)]

    fig, ax = _new_axes(ax, (BOOK_WIDTH, 5.5))
    if latent_dim > 2:
        points, share = _pca_2d(means)
        xlabel, ylabel = (f"PC 1 ({100 * share[0]:.0f}% var)", f"PC 2 ({100 * share[1]:.0f}% var)")
        title = f"{title} (PCA of {latent_dim}-D latent)"
    elif latent_dim == 2:
        points, (xlabel, ylabel) = means, ("z₁", "z₂")
    elif latent_dim == 1:  # a 1-D latent: spread the classes out vertically instead
        points = np.column_stack([means[:, 0], labels.astype(np.float64)])
        xlabel, ylabel = "z₁", "class"
        ax.set_yticks(range(len(class_names)), class_names)
    else:
        raise ValueError("means has 0 latent dimensions; expected (N, latent_dim >= 1)")

    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for c in classes:
        mask = labels == c
        name = class_names[int(c)] if int(c) < len(class_names) else str(c)
        ax.scatter(points[mask, 0], points[mask, 1], s=point_size, alpha=alpha,
                   color=colours(int(c) % colours.N), label=name, rasterized=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(title="class", loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=3,
              frameon=False)
    return fig


def latent_manifold(model: torch.nn.Module, n: int = 15, span: tuple[float, float] = (0.05, 0.95),
                    title: str | None = None, ax=None, label: int | None = None) -> Figure:
    """Decode an ``n × n`` grid of latent points placed at standard-normal quantiles
    ``span[0]..span[1]``: equal steps in probability under the prior, so the grid covers
    where the prior puts its mass (the Keras/TF "manifold" figure). 2-D latents only;
    a conditional model also needs the class ``label`` to decode."""
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim != 2:
        raise ValueError(f"latent_manifold draws a 2-D latent grid, but this model has "
                         f"latent_dim={latent_dim}; train a latent-2 recipe (tf-cvae or "
                         f"pytorch-mlp) or use latent_scatter, which projects with PCA")
    low, high = span
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"span must be quantiles with 0 < low < high < 1; got {span}")
    normal = NormalDist()
    values = [normal.inv_cdf(p) for p in np.linspace(low, high, n)]
    # Row r shows z₂ = values[n-1-r] so that "up" on the page is larger z₂, like a plot.
    grid_z = [[z1, z2] for z2 in reversed(values) for z1 in values]
    z = torch.tensor(grid_z, dtype=torch.float32, device=_model_device(model))
    with inference(model):
        decoded = model.decode(z, *_class_labels(model, len(z), label, "latent_manifold"))
    images = _as_images(decoded)
    height, width = images.shape[1:]
    grid = tile(images, ncols=n, padding=0)

    fig, ax = _new_axes(ax, (6.5, 6.8))
    ax.imshow(grid, **IMAGE_STYLE)
    centres_x = [k * width + width / 2 - 0.5 for k in range(n)]
    centres_y = [k * height + height / 2 - 0.5 for k in range(n)]
    labels = [f"{round(v, 2) + 0.0:.2f}" for v in values]  # + 0.0 turns -0.00 into 0.00
    ax.set_xticks(centres_x, labels, rotation=90, fontsize=8)
    ax.set_yticks(centres_y, labels[::-1], fontsize=8)
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    ax.set_title(title or f"Decoded {n}×{n} latent grid at standard-normal quantiles "
                          f"{100 * low:.0f}%–{100 * high:.0f}%"
                          + (f", class {label}" if label is not None else ""))
    return fig


def _interpolate(model: torch.nn.Module, x_a: Any, x_b: Any, steps: int,
                 label: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, decoded images) along the straight line between the posterior means."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both endpoints); got {steps}")
    device = _model_device(model)

    def as_batch(x: Any) -> torch.Tensor:
        x = torch.as_tensor(_to_numpy(x), dtype=torch.float32)
        return x.reshape(1, 1, *x.shape[-2:]).to(device)

    alphas = np.linspace(0.0, 1.0, steps)
    with inference(model):
        one = _class_labels(model, 1, label, "interpolation_strip")
        mu_a, _ = model.encode(as_batch(x_a), *one)
        mu_b, _ = model.encode(as_batch(x_b), *one)
        weights = torch.tensor(alphas, dtype=mu_a.dtype, device=device)[:, None]
        z = (1 - weights) * mu_a + weights * mu_b
        decoded = model.decode(z, *_class_labels(model, steps, label, "interpolation_strip"))
    return alphas, _as_images(decoded)


def interpolation_strip(model: torch.nn.Module, x_a: Any, x_b: Any, steps: int = 10,
                        show_inputs: bool = True,
                        title: str = "Decoding the straight line between two posterior means",
                        label: int | None = None) -> Figure:
    """Decode ``z = (1-α)·μ_a + α·μ_b`` for ``steps`` values of α from 0 to 1.

    With ``show_inputs`` the two input images frame the strip, so the reader can see how
    much the endpoints (``decode(μ)``) already differ from the data. A conditional model
    encodes and decodes everything as class ``label``.
    """
    alphas, decoded = _interpolate(model, x_a, x_b, steps, label)
    panels = [(img, f"α={a:.2f}") for a, img in zip(alphas, decoded)]
    if show_inputs:
        panels = [(_as_images(x_a)[0], "input A")] + panels + [(_as_images(x_b)[0], "input B")]
    width = min(BOOK_WIDTH, 0.8 * len(panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, width / len(panels) + 0.85),
                             layout="constrained", squeeze=False)
    for ax, (image, label) in zip(axes[0], panels):
        ax.imshow(image, **IMAGE_STYLE)
        _hide_ticks(ax)
        ax.set_title(label, fontsize=8)
    if show_inputs:  # set the inputs apart from the decoded images
        for ax in (axes[0][0], axes[0][-1]):
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:red")
                spine.set_linewidth(1.5)
    fig.suptitle(title)
    fig.supxlabel("α: 0 = decode(mean of A), 1 = decode(mean of B)"
                  + ("; red frames are the inputs" if show_inputs else ""), fontsize=9)
    return fig
