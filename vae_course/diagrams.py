"""Diagrams of what a VAE computes, drawn with matplotlib so that the book's figures come
from code in the repository (and change when the code does).

Each function draws on the caller's axes, or on a new figure no wider than
:data:`DIAGRAM_WIDTH`, and returns the figure. A diagram's boxes are text artists with a
bounding box; their ``gid`` names the node, so tests (and readers) can find them.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

DIAGRAM_WIDTH = 7.5  # inches: shown at full size in the book's text column

# Colours shared by the diagrams: what a node is, not which diagram it is in.
NETWORK = "#dbe9f6"   # a network with trained weights
TENSOR = "#f4f4f4"    # a value computed from its inputs
RANDOM = "#fde2c4"    # a random draw
LOSS = "#f9d5d3"      # a loss term
FORWARD = "black"
GRADIENT = "#c0392b"


def _axes(ax: Axes | None, height: float, ncols: int = 1):
    """(figure, list of axes): the caller's axes, or a new figure of diagram width."""
    if ax is not None:
        return ax.figure, [ax]
    fig, axes = plt.subplots(1, ncols, figsize=(DIAGRAM_WIDTH, height),
                             layout="constrained")
    return fig, list(np.atleast_1d(axes))


def _canvas(ax: Axes, width: float, height: float) -> None:
    """A blank drawing area in diagram units: a diagram has no data axes to label."""
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()


def _node(ax: Axes, xy: tuple[float, float], text: str, colour: str, name: str,
          rounded: bool = True) -> Text:
    """A box with centred text; random draws get round ends so they stand out."""
    style = "round,pad=0.4" if rounded else "round4,pad=0.5"
    node = ax.text(*xy, text, ha="center", va="center", fontsize=10,
                   bbox=dict(boxstyle=style, facecolor=colour, edgecolor="0.3"))
    node.set_gid(name)
    return node


def _arrow(ax: Axes, start: Text, end: Text, colour: str = FORWARD, label: str = "",
           bend: float = 0.0, dashed: bool = False, label_offset=(0.0, 0.0)):
    """An arrow between two boxes, clipped at their edges (drawn after the boxes)."""
    style = f"arc3,rad={bend}"
    ax.annotate("", xy=end.get_position(), xytext=start.get_position(),
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.3,
                                linestyle="--" if dashed else "-",
                                patchA=start.get_bbox_patch(),
                                patchB=end.get_bbox_patch(),
                                shrinkA=2, shrinkB=2, connectionstyle=style))
    if label:
        (x0, y0), (x1, y1) = start.get_position(), end.get_position()
        ax.text((x0 + x1) / 2 + label_offset[0], (y0 + y1) / 2 + label_offset[1], label,
                ha="center", va="center", fontsize=9, color=colour)


def _elbow(ax: Axes, start: Text, end: Text, via_y: float, colour: str = FORWARD):
    """An arrow that leaves ``start`` downwards, runs along ``via_y`` and enters ``end``."""
    x0 = start.get_position()[0]
    ax.annotate("", xy=end.get_position(), xytext=(x0, via_y),
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.3,
                                patchB=end.get_bbox_patch(), shrinkA=0, shrinkB=2))
    ax.annotate("", xy=(x0, via_y), xytext=start.get_position(),
                arrowprops=dict(arrowstyle="-", color=colour, lw=1.3,
                                patchA=start.get_bbox_patch(), shrinkA=2, shrinkB=0))


def vae_computation(ax: Axes | None = None) -> Figure:
    """The VAE's forward pass and the two terms of its loss, left to right.

    The image goes through the encoder to the Gaussian's parameters, the sampling layer
    adds noise from the side, the decoder rebuilds the image; the reconstruction term
    compares the two images, the KL term looks only at the encoder's output.
    """
    fig, (ax,) = _axes(ax, height=3.3)
    _canvas(ax, 10.0, 4.4)
    y = 2.7
    x = _node(ax, (0.45, y), "image\n$x$", TENSOR, "x")
    encoder = _node(ax, (2.0, y), "encoder\n$q_\\phi(z \\mid x)$", NETWORK, "encoder")
    stats = _node(ax, (3.85, y), "$\\mu$\n$\\log\\sigma^2$", TENSOR, "stats")
    z = _node(ax, (5.6, y), "code\n$z = \\mu + \\sigma \\odot \\epsilon$", TENSOR, "z")
    eps = _node(ax, (5.6, 4.05), "noise $\\epsilon \\sim \\mathcal{N}(0, I)$", RANDOM,
                "epsilon")
    decoder = _node(ax, (7.6, y), "decoder\n$p_\\theta(x \\mid z)$", NETWORK, "decoder")
    x_hat = _node(ax, (9.45, y), "output\n$\\hat x$", TENSOR, "x_hat")
    kl = _node(ax, (3.85, 1.45),
               "KL term\n$D_{\\mathrm{KL}}(q_\\phi(z \\mid x) \\,\\Vert\\, p(z))$",
               LOSS, "kl")
    reconstruction = _node(ax, (8.55, 0.6), "reconstruction term\n"
                           "$-\\log p_\\theta(x \\mid z)$", LOSS, "reconstruction")
    for start, end in [(x, encoder), (encoder, stats), (stats, z), (eps, z),
                       (z, decoder), (decoder, x_hat), (stats, kl),
                       (x_hat, reconstruction)]:
        _arrow(ax, start, end)
    _elbow(ax, x, reconstruction, via_y=0.6)
    ax.text(6.6, 1.6, "loss = reconstruction + $\\beta \\cdot$ KL", ha="center",
            va="center", fontsize=10, style="italic")
    ax.set_title("The VAE's computation: one image through the network, "
                 "and the two terms of its loss", fontsize=11)
    return fig


def _gradient_panel(ax: Axes, reparameterized: bool) -> None:
    """One half of :func:`reparameterization`: forward arrows and where gradients go."""
    _canvas(ax, 5.0, 4.2)
    mu = _node(ax, (0.55, 3.0), "$\\mu$", TENSOR, "mu")
    sigma = _node(ax, (0.55, 1.0), "$\\sigma$", TENSOR, "sigma")
    if reparameterized:
        z = _node(ax, (2.45, 2.0), "$z = \\mu + \\sigma \\odot \\epsilon$", TENSOR, "z")
        eps = _node(ax, (2.45, 3.7), "$\\epsilon \\sim \\mathcal{N}(0, I)$", RANDOM,
                    "epsilon")
    else:
        z = _node(ax, (2.45, 2.0), "sample\n$z \\sim \\mathcal{N}(\\mu, \\sigma^2)$",
                  RANDOM, "z")
    loss = _node(ax, (4.45, 2.0), "loss\n$f(z)$", LOSS, "loss")
    for start in (mu, sigma):
        _arrow(ax, start, z)
    if reparameterized:
        _arrow(ax, eps, z)
    _arrow(ax, z, loss)
    _arrow(ax, loss, z, GRADIENT, "$\\partial f / \\partial z$", bend=0.5, dashed=True,
           label_offset=(0.0, 0.8))
    if reparameterized:
        for end, bend in ((mu, 0.35), (sigma, -0.35)):
            _arrow(ax, z, end, GRADIENT, bend=bend, dashed=True)
        ax.text(0.75, 2.0, "gradients\nreach\n$\\mu$ and $\\sigma$", ha="center",
                va="center", fontsize=8.5, color=GRADIENT)
        ax.set_title("Reparameterized: $z = \\mu + \\sigma \\odot \\epsilon$", fontsize=10)
    else:
        ax.text(0.75, 2.0, "no gradient\nreaches\n$\\mu$ or $\\sigma$", ha="center",
                va="center", fontsize=8.5, color="0.35")
        ax.set_title("A plain random draw", fontsize=10)


def reparameterization(ax: Axes | None = None) -> Figure:
    """Where the gradient of a loss goes: stopped by a random draw, or through the trick.

    With ``ax`` given only the reparameterized half is drawn there.
    """
    if ax is not None:
        _gradient_panel(ax, reparameterized=True)
        return ax.figure
    fig, (left, right) = _axes(None, height=3.0, ncols=2)
    _gradient_panel(left, reparameterized=False)
    _gradient_panel(right, reparameterized=True)
    fig.suptitle("Why the trick: gradients (red, dashed) through the sampling step",
                 fontsize=11)
    return fig


def elbo_gap(names: Sequence[str], elbos: Sequence[float],
             kls_to_posterior: Sequence[float], ax: Axes | None = None) -> Figure:
    """``log p(x) = ELBO + KL(q || p(z | x))`` as bars, one per approximation ``q``.

    Each bar reaches down from 0 to the ELBO (log-likelihoods here are negative): the
    upper part is ``log p(x)``, the same for every ``q``, and the hatched lower part is
    the gap, the KL divergence from ``q`` to the true posterior.
    """
    if not len(names) == len(elbos) == len(kls_to_posterior):
        raise ValueError(f"elbo_gap: got {len(names)} names, {len(elbos)} ELBOs and "
                         f"{len(kls_to_posterior)} KL values; give one of each per q")
    fig, (ax,) = _axes(ax, height=3.6)
    elbos = np.asarray(elbos, dtype=float)
    log_px = elbos + np.asarray(kls_to_posterior, dtype=float)
    positions = np.arange(len(names))
    ax.bar(positions, log_px, width=0.6, color="#9ecae1", edgecolor="0.3",
           label="$\\log p(x)$")
    ax.bar(positions, elbos - log_px, bottom=log_px, width=0.6, color="#fdd0a2",
           edgecolor="0.3", hatch="//", label="gap = $D_{\\mathrm{KL}}(q \\,\\Vert\\, p(z \\mid x))$")
    for position, elbo, gap in zip(positions, elbos, log_px - elbos):
        ax.annotate(f"ELBO {elbo:.2f}\ngap {gap:.2f}", (position, elbo), xytext=(0, -3),
                    textcoords="offset points", ha="center", va="top", fontsize=9)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(positions, names)
    ax.set_ylim(1.35 * elbos.min(), 0.0)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel("nats")
    ax.set_xlabel("approximate posterior $q$")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    ax.set_title("$\\log p(x) = \\mathrm{ELBO} + D_{\\mathrm{KL}}(q \\,\\Vert\\, p(z \\mid x))$:"
                 " the gap for each $q$", fontsize=11)
    return fig
