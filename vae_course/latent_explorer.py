"""A latent explorer that works in a static page (chapter 8): two sliders, one decoded image.

The chapter's ipywidgets sliders need a running kernel, so in the rendered book they are
inert.  :func:`static_explorer` decodes a whole grid of latent points ahead of time, packs
the images into one PNG sprite sheet, and returns HTML whose few lines of inline JavaScript
only move the sprite behind a window: no kernel, no library, no file or CDN to fetch, so it
works offline in the book, in Jupyter and in Colab output cells.
"""
from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
from PIL import Image

from .evaluate import inference
from .plots import _as_images, _class_labels, _model_device, _to_numpy

MAX_STEPS = 41  # 41 x 41 tiles: a 1148 x 1148 sprite, ~0.7 MB of page for MNIST (21 x 21: ~0.2 MB)
MAX_SCALE = 8
BATCH = 256
_calls = itertools.count()  # tells apart identical explorers made twice for one page


@dataclass(frozen=True)
class LatentExplorer:
    """What :func:`static_explorer` returns: Jupyter and Jupyter Book show ``html`` (through
    ``_repr_html_``, so the package needs no IPython), while the numbers stay inspectable.

    ``values`` are the ``steps`` latent values each slider takes, ``base`` the latent point
    whose other coordinates stay fixed.  ``tiles[i, j]`` is the image decoded at
    ``z[dims[0]] = values[i]``, ``z[dims[1]] = values[j]`` (float32 in [0, 1]); the sprite in
    ``html`` holds it, rounded to 8 bits, at row ``i``, column ``j``.
    """
    html: str
    tiles: np.ndarray
    values: np.ndarray
    dims: tuple[int, int]
    base: np.ndarray

    def _repr_html_(self) -> str:
        return self.html


def _check_args(model: torch.nn.Module, dims: Any, steps: Any, span: Any, scale: Any) -> int:
    """Clear errors for bad arguments; returns the model's latent_dim."""
    latent_dim = getattr(model, "latent_dim", None)
    if not isinstance(latent_dim, int) or latent_dim < 2:
        raise ValueError(f"static_explorer: the model needs latent_dim >= 2 to move two "
                         f"coordinates; this {type(model).__name__} has latent_dim={latent_dim}")
    whole = (int, np.integer)
    if (not isinstance(dims, (tuple, list)) or len(dims) != 2 or dims[0] == dims[1]
            or not all(isinstance(d, whole) and not isinstance(d, bool) and 0 <= d < latent_dim
                       for d in dims)):
        raise ValueError(f"static_explorer: dims must be two different latent dimensions from "
                         f"0 to {latent_dim - 1} (latent_dim={latent_dim}); got dims={dims}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS:
        raise ValueError(f"static_explorer: steps must be a whole number from 2 to {MAX_STEPS} "
                         f"(every one of the steps x steps images is embedded in the page, so "
                         f"more would make it heavy); got steps={steps!r}")
    if not isinstance(span, (tuple, list)) or len(span) != 2 or not 0.0 < span[0] < span[1] < 1.0:
        raise ValueError(f"static_explorer: span must be two standard-normal quantiles with "
                         f"0 < low < high < 1, e.g. (0.05, 0.95); got span={span}")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"static_explorer: scale must be a whole number of screen pixels per "
                         f"image pixel from 1 to {MAX_SCALE}; got scale={scale!r}")
    return latent_dim


def _base_point(base: Any, latent_dim: int) -> np.ndarray:
    """The latent point whose other coordinates stay fixed: zeros (the prior's mean) by default."""
    if base is None:
        return np.zeros(latent_dim, dtype=np.float32)
    point = _to_numpy(base).astype(np.float32).reshape(-1)
    if point.shape != (latent_dim,) or not np.isfinite(point).all():
        raise ValueError(f"static_explorer: base must be {latent_dim} finite numbers (one per "
                         f"latent dimension), e.g. a posterior mean; got shape {point.shape}")
    return point


def _decode_grid(model: torch.nn.Module, base: np.ndarray, dims: tuple[int, int],
                 values: np.ndarray, label: int | None) -> np.ndarray:
    """Images (steps, steps, H, W) decoded over the grid, in batches of BATCH, without gradients."""
    steps = len(values)
    z = np.tile(base, (steps * steps, 1))
    z[:, dims[0]] = np.repeat(values, steps)   # row-major: i changes slowest
    z[:, dims[1]] = np.tile(values, steps)
    z = torch.from_numpy(z).to(_model_device(model))
    images = []
    with inference(model):
        for start in range(0, len(z), BATCH):
            chunk = z[start:start + BATCH]
            images.append(_as_images(model.decode(chunk, *_class_labels(
                model, len(chunk), label, "static_explorer"))))
    images = np.concatenate(images)
    return images.reshape(steps, steps, *images.shape[1:])


def sprite_png(tiles: np.ndarray) -> bytes:
    """One 8-bit grey PNG: tile ``(i, j)`` at row ``i``, column ``j``, no padding."""
    steps, _, height, width = tiles.shape
    sheet = tiles.transpose(0, 2, 1, 3).reshape(steps * height, steps * width)
    buffer = io.BytesIO()
    Image.fromarray(np.round(sheet * 255).astype(np.uint8), mode="L").save(
        buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# The page's only code: each slider moves the sprite behind the window to tile (i, j).
_SCRIPT = """(function () {
  var root = document.getElementById("%(id)s"), values = %(values)s;  // as shown
  var sliders = root.querySelectorAll("input"), outputs = root.querySelectorAll("output");
  var view = root.querySelector("div.vae-explorer-view");
  function show() {
    var i = Number(sliders[0].value), j = Number(sliders[1].value);
    view.style.backgroundPosition = (-j * %(w)d) + "px " + (-i * %(h)d) + "px";
    outputs[0].textContent = values[i];
    outputs[1].textContent = values[j];
  }
  sliders[0].addEventListener("input", show);
  sliders[1].addEventListener("input", show);
  show();
})();"""


def _shown(values: np.ndarray) -> list[str]:
    """The values as the sliders show them (``+ 0.0`` turns -0.00 into 0.00)."""
    return [f"{round(float(v), 2) + 0.0:.2f}" for v in values]


def _slider(dim: int, values: np.ndarray) -> str:
    """A range input over the grid's indices, labelled z<sub>dim+1</sub> with its current value."""
    middle = (len(values) - 1) // 2
    return (f'<label style="display:block">z<sub>{dim + 1}</sub> <input type="range" min="0" '
            f'max="{len(values) - 1}" step="1" value="{middle}" aria-label="z{dim + 1}"> '
            f'= <output>{_shown(values)[middle]}</output></label>')


def _caption(dims: tuple[int, int], values: np.ndarray, latent_dim: int, base: Any,
             label: int | None) -> str:
    names = f"z<sub>{dims[0] + 1}</sub> and z<sub>{dims[1] + 1}</sub>"
    where = "0, the prior's mean" if base is None else "the given base point"
    fixed = "" if latent_dim == 2 else f"; the other latent coordinates stay at {where}"
    condition = "" if label is None else f", class {label}"
    return (f"The decoder's image as {names} (dims={dims}) move over {len(values)} "
            f"standard-normal quantiles from {values[0]:.2f} to {values[-1]:.2f}"
            f"{fixed}{condition}. The {len(values)}&times;{len(values)} images were decoded "
            f"ahead of time, so the sliders work without a kernel.")


def static_explorer(model: torch.nn.Module, *, dims: tuple[int, int] = (0, 1), steps: int = 21,
                    span: tuple[float, float] = (0.05, 0.95), base: Any = None,
                    label: int | None = None, scale: int = 3) -> LatentExplorer:
    """Two sliders over latent coordinates ``dims`` and the decoded image, in plain HTML + JS.

    The ``steps x steps`` grid sits at standard-normal quantiles ``span`` (as in
    :func:`~vae_course.latent_plots.latent_manifold`: equal steps in prior probability); the
    other coordinates stay at ``base`` (default: zeros, the prior's mean).  A conditional
    model decodes class ``label``.  ``scale`` screen pixels show one image pixel.  Everything
    is embedded in the returned HTML, so it works in a static page; chapter 8 shows it.
    """
    latent_dim = _check_args(model, dims, steps, span, scale)
    dims = (int(dims[0]), int(dims[1]))
    point = _base_point(base, latent_dim)
    normal = NormalDist()
    values = np.array([normal.inv_cdf(p) for p in np.linspace(span[0], span[1], steps)],
                      dtype=np.float32)
    tiles = _decode_grid(model, point, dims, values, label)
    png = sprite_png(tiles)
    height, width = tiles.shape[2:]
    digest = hashlib.sha1(png + repr((dims, values.tolist())).encode()).hexdigest()[:10]
    # The digest keeps a re-executed notebook's output the same; the count keeps two equal calls apart.
    element_id = f"vae-explorer-{digest}-{next(_calls)}"
    script = _SCRIPT % {"id": element_id, "values": json.dumps(_shown(values)),
                        "w": width * scale, "h": height * scale}
    view = (f'<div class="vae-explorer-view" role="img" aria-label="decoded image" style="'
            f'width:{width * scale}px;height:{height * scale}px;image-rendering:pixelated;'
            f'background:url(data:image/png;base64,{base64.b64encode(png).decode()}) no-repeat;'
            f'background-size:{steps * width * scale}px {steps * height * scale}px"></div>')
    html = (f'<figure id="{element_id}" class="vae-explorer" style="margin:0.5em 0">'
            f'{_slider(dims[0], values)}{_slider(dims[1], values)}{view}'
            f'<figcaption style="font-size:90%">{_caption(dims, values, latent_dim, base, label)}'
            f'</figcaption><script>{script}</script></figure>')
    return LatentExplorer(html, tiles, values, dims, point)
