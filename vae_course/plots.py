"""The course's figures: image grids, reconstructions, latent spaces and loss curves.

Every function takes numpy arrays or torch tensors (on any device; they are detached and
moved to the CPU here) and returns a :class:`matplotlib.figure.Figure` with a title and
labelled axes, so a notebook cell can show it and a script can ``fig.savefig`` it.
Images are drawn with the ``gray`` colormap on a fixed ``[0, 1]`` scale, so a faint
reconstruction *looks* faint instead of being stretched to full contrast.

The grid maths lives in :func:`tile` (MATLAB's ``imtile``); torchvision is not needed.
The figures that watch a run while it trains (a live loss plot, sample snapshots, the
training animation) are in :mod:`vae_course.monitors`.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


IMAGE_STYLE = dict(cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
BOOK_WIDTH = 8.0  # inches: figures are sized to fill the book's text column


# --------------------------------------------------------------------------- helpers

def _to_numpy(values: Any) -> np.ndarray:
    """Tensor (any device, maybe requiring grad) or array-like -> numpy array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.is_floating_point() and values.dtype != torch.float64:
            values = values.float()  # bf16/fp16 have no numpy equivalent
        return values.numpy()
    return np.asarray(values)


def _as_images(images: Any) -> np.ndarray:
    """Images in any of the course's layouts -> float32 ``(N, H, W)`` in [0, 1].

    Accepts ``(N, 1, H, W)`` (the course convention), ``(N, H, W, 1)``, ``(N, H, W)`` or
    one ``(H, W)`` image; uint8 images are scaled by 1/255.
    """
    array = _to_numpy(images)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = array.astype(np.float32, copy=False)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 4:
        if array.shape[1] == 1:
            array = array[:, 0]
        elif array.shape[3] == 1:
            array = array[..., 0]
        else:
            raise ValueError(f"images must be grayscale (N, 1, H, W); got shape {tuple(array.shape)} "
                             "with more than one channel")
    elif array.ndim != 3:
        raise ValueError(f"images must have shape (N, 1, H, W), (N, H, W) or (H, W); "
                         f"got {tuple(array.shape)}")
    if len(array) == 0:
        raise ValueError("images is empty: nothing to draw")
    return np.clip(array, 0.0, 1.0)


def _model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's parameters (CPU for a parameter-free model)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _class_labels(model: torch.nn.Module, n: int, label: int | None, caller: str
                  ) -> tuple[torch.Tensor, ...]:
    """Extra decode/encode arguments: ``(y,)`` for a conditional model (``model.conditional``,
    whose methods take labels), ``()`` for an ordinary one."""
    if not getattr(model, "conditional", False):
        if label is not None:
            raise ValueError(f"{caller}: label={label} is only for conditional models; "
                             f"this {type(model).__name__} takes no labels")
        return ()
    if label is None:
        raise ValueError(f"{caller}: {type(model).__name__} is conditional, so say which class "
                         f"to draw, e.g. {caller}(model, ..., label=3)")
    return (torch.full((n,), int(label), dtype=torch.long, device=_model_device(model)),)


@contextmanager
def _atomic_target(path: str | os.PathLike, suffix: str, what: str) -> Iterator[Path]:
    """Yield a temp file next to ``path`` (same suffix, so writers pick the format), then
    ``os.replace`` it into place: a reader never sees half a file."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ValueError(f"{what}: path {str(path)!r} must end in {suffix!r} "
                         f"(this function writes {suffix[1:].upper()} files)")
    if path.is_dir():
        raise IsADirectoryError(f"{what}: {str(path)!r} is a directory; give a file name "
                                f"ending in {suffix!r}")
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{what}: cannot write {str(path)!r} because the folder "
                                f"{str(parent)!r} does not exist; create it first "
                                f"(Path({str(parent)!r}).mkdir(parents=True))")
    # Not mkstemp: its 0600 mode would survive the rename. The pid keeps parallel writers apart.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _new_axes(ax, figsize: tuple[float, float]):
    """(figure, axes): a fresh constrained-layout figure, or the caller's axes."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def _grid_figsize(height_px: int, width_px: int, max_width: float = BOOK_WIDTH,
                  max_height: float = 7.0) -> tuple[float, float]:
    """A figure size that keeps an image grid's aspect, with room for titles and labels."""
    aspect = height_px / width_px
    width = min(max_width, max_height / aspect)
    return width, width * aspect + 0.9


def _hide_ticks(ax) -> None:
    """Image axes keep their labels (which say what rows/columns are) but lose pixel ticks."""
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------- image grids

def tile(images: Any, ncols: int | None = None, padding: int = 1,
         pad_value: float = 1.0) -> np.ndarray:
    """Lay images out in a grid, row by row (MATLAB's ``imtile``).

    ``ncols`` defaults to ``ceil(sqrt(N))``. ``padding`` pixels of ``pad_value`` separate
    the images and surround the grid, so the result has shape
    ``(rows*(H+padding)+padding, ncols*(W+padding)+padding)``; image ``k`` has its top-left
    corner at ``(padding + (k // ncols)*(H+padding), padding + (k % ncols)*(W+padding))``.
    Unused cells of the last row are ``pad_value``.
    """
    stack = _as_images(images)
    n, height, width = stack.shape
    if ncols is None:
        ncols = math.ceil(math.sqrt(n))
    if ncols < 1:
        raise ValueError(f"ncols must be a positive number of columns; got {ncols}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0 pixels; got {padding}")
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (height + padding) + padding, ncols * (width + padding) + padding),
                   pad_value, dtype=np.float32)
    for k, image in enumerate(stack):
        top = padding + (k // ncols) * (height + padding)
        left = padding + (k % ncols) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def image_tile(images: Any, ncols: int | None = None, title: str = "Images",
               ax=None) -> Figure:
    """Show images as one grid (read left to right, top to bottom)."""
    grid = tile(images, ncols)
    n = len(_as_images(images))
    fig, ax = _new_axes(ax, _grid_figsize(*grid.shape, max_height=6.0))
    ax.imshow(grid, **IMAGE_STYLE)
    _hide_ticks(ax)
    ax.set_title(title)
    ax.set_xlabel(f"{n} images, read left to right, top to bottom")
    return fig


def labelled_grid(images: Any, row_labels: Sequence[str], column_labels: Sequence[str], *,
                  title: str, xlabel: str = "", ylabel: str = "", rotate_columns: bool = False,
                  height_per_row: float = 0.9, ax=None) -> Figure:
    """A grid of images with a label for each row and each column (``images`` row by row).

    For figures like "one row per model, one column per class": the labels sit at the
    centres of the images, computed from :func:`tile`'s layout.
    """
    stack = _as_images(images)
    nrows, ncols = len(row_labels), len(column_labels)
    if len(stack) != nrows * ncols:
        raise ValueError(f"labelled_grid: {len(stack)} images for {nrows} rows x {ncols} columns; "
                         f"pass exactly one image per cell, row by row")
    height, width = stack.shape[1:]
    grid = tile(stack, ncols=ncols)
    fig, ax = _new_axes(ax, (min(BOOK_WIDTH, height_per_row * ncols + 2.5), height_per_row * nrows + 1.3))
    ax.imshow(grid, **IMAGE_STYLE)

    def centres(count: int, size: int) -> list[float]:  # tile: 1 pixel of padding, then images
        return [1 + k * (size + 1) + (size - 1) / 2 for k in range(count)]
    ax.set_yticks(centres(nrows, height), list(row_labels))
    if rotate_columns:
        ax.set_xticks(centres(ncols, width), list(column_labels), rotation=30, ha="right",
                      rotation_mode="anchor", fontsize=9)
    else:
        ax.set_xticks(centres(ncols, width), list(column_labels))
    ax.tick_params(length=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def save_image_grid(images: Any, path: str | os.PathLike, ncols: int | None = None,
                    scale: int = 2) -> Path:
    """Write images as one PNG grid, upscaled ``scale``× (nearest neighbour, so pixels stay
    sharp). The file is written to a temp name and renamed, so it is never half-written."""
    from PIL import Image

    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive whole number; got {scale}")
    grid = tile(images, ncols)
    pixels = np.round(grid * 255.0).astype(np.uint8)
    picture = Image.fromarray(pixels)  # 2-D uint8 -> 8-bit grayscale
    if scale != 1:
        picture = picture.resize((picture.width * int(scale), picture.height * int(scale)),
                                 Image.Resampling.NEAREST)
    path = Path(path)
    with _atomic_target(path, ".png", "save_image_grid") as tmp:
        picture.save(tmp, format="PNG")
    return path


def reconstructions_by_class(originals: Any, reconstructions: Any, labels: Any,
                             class_names: Sequence[str], per_class: int = 1,
                             title: str = "Originals and their reconstructions, by class",
                             ax=None) -> Figure:
    """One row per class: the first ``per_class`` images of that class, each followed by
    its reconstruction. A class without images gets an empty row marked "(none)"."""
    originals = _as_images(originals)
    reconstructions = _as_images(reconstructions)
    labels = _to_numpy(labels).reshape(-1)
    if not (len(originals) == len(reconstructions) == len(labels)):
        raise ValueError(f"originals, reconstructions and labels must have the same length; got "
                         f"{len(originals)}, {len(reconstructions)} and {len(labels)}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1; got {per_class}")
    height, width = originals.shape[1:]
    blank = np.ones((height, width), dtype=np.float32)
    cells, row_names = [], []
    for c, name in enumerate(class_names):
        chosen = np.flatnonzero(labels == c)[:per_class]
        row_names.append(name if len(chosen) else f"{name} (none)")
        for j in range(per_class):
            if j < len(chosen):
                cells += [originals[chosen[j]], reconstructions[chosen[j]]]
            else:
                cells += [blank, blank]
    ncols = 2 * per_class
    grid = tile(np.stack(cells), ncols=ncols)
    nrows = len(class_names)

    image_height = min(7.5, 0.6 * nrows)  # inches for the grid itself
    image_width = min(BOOK_WIDTH - 2.0, image_height * grid.shape[1] / grid.shape[0])
    fig, ax = _new_axes(ax, (max(5.0, image_width + 2.0), image_height + 1.6))
    ax.imshow(grid, **IMAGE_STYLE)
    step_y, step_x = height + 1, width + 1
    ax.set_yticks([1 + r * step_y + height / 2 - 0.5 for r in range(nrows)], row_names)
    ax.set_xticks([1 + k * step_x + width / 2 - 0.5 for k in range(ncols)],
                  ["original", "reconstruction"] * per_class,
                  rotation=40, ha="right", rotation_mode="anchor")
    ax.tick_params(length=0)
    ax.set_ylabel("class")
    ax.set_xlabel("each original followed by its reconstruction")
    ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- error and latent plots

def error_histogram(errors: Any, bins: int = 50,
                    title: str = "Per-image reconstruction error", ax=None) -> Figure:
    """Histogram of per-image reconstruction MSE with the median and mean marked: the long
    right tail is where the model struggles, and the mean is pulled into it."""
    errors = _to_numpy(errors).astype(np.float64).reshape(-1)
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        raise ValueError("errors has no finite values to plot")
    fig, ax = _new_axes(ax, (BOOK_WIDTH, 4.0))
    ax.hist(errors, bins=bins, color="tab:blue", alpha=0.75)
    median, mean = float(np.median(errors)), float(errors.mean())
    ax.axvline(median, color="black", linestyle="-", linewidth=1.5, label=f"median {median:.4g}")
    ax.axvline(mean, color="tab:red", linestyle="--", linewidth=1.5, label=f"mean {mean:.4g}")
    ax.set_xlabel("reconstruction MSE per image (mean over pixels)")
    ax.set_ylabel("number of images")
    ax.set_title(f"{title} ({errors.size} images)")
    ax.legend()
    return fig
