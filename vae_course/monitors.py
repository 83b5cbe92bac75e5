"""Watching a run train: loss curves (live and afterwards), sample snapshots, the training animation.

:class:`LiveLossPlot` and :class:`SampleSnapshots` are callbacks for
``vae_course.train.fit(callbacks=[...])`` (MATLAB's ``trainingProgressMonitor``, chapter 6;
the sharpening samples of the TensorFlow tutorial, chapter 8).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .evaluate import inference
from .plots import (BOOK_WIDTH, IMAGE_STYLE, _as_images, _atomic_target, _model_device, _new_axes,
                    _to_numpy, tile)


def _history_parts(history: Any) -> tuple[list[float], list[dict]]:
    """(iteration_loss, epochs) from a History or its ``to_dict()``."""
    if isinstance(history, dict):
        return list(history.get("iteration_loss", [])), list(history.get("epochs", []))
    return list(getattr(history, "iteration_loss", [])), list(getattr(history, "epochs", []))


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (entry i averages values[i-window+1..i])."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    return (cumulative[window:] - cumulative[:-window]) / window


def _draw_loss_curve(ax, iteration_loss: Sequence[float], epochs: Sequence[dict], log: bool,
                     title: str, ylabel: str, iterations_per_epoch: float | None = None) -> None:
    losses = np.asarray(iteration_loss, dtype=np.float64)
    n = len(losses)
    iterations = np.arange(1, n + 1)
    plotted: list[np.ndarray] = []
    if n:
        ax.plot(iterations, losses, color="tab:blue", alpha=0.25, linewidth=0.8,
                label="per iteration")
        plotted.append(losses)
        window = max(1, min(100, n // 10))
        if window > 1:
            ax.plot(iterations[window - 1:], _moving_average(losses, window), color="tab:blue",
                    linewidth=1.8, label=f"moving average ({window} iterations)")

    per_epoch = iterations_per_epoch or (n / len(epochs) if (n and epochs) else None)
    boundaries = np.array([(i + 1) * per_epoch if per_epoch else i + 1 for i in range(len(epochs))])
    for key, style, label in (("test_loss", dict(color="tab:orange", marker="o"), "test (end of epoch)"),
                              ("train_loss", dict(color="black", marker="s", markerfacecolor="none",
                                                  linestyle=":"), "train (epoch mean)")):
        values = [e.get(key) for e in epochs]
        keep = [i for i, v in enumerate(values) if v is not None and np.isfinite(v)]
        if keep and (key == "test_loss" or not n):  # the epoch mean only when no iterations
            ys = np.array([values[i] for i in keep], dtype=np.float64)
            ax.plot(boundaries[keep], ys, linewidth=1.5, label=label, **style)
            plotted.append(ys)

    if per_epoch:
        ax.secondary_xaxis("top", functions=(lambda it: it / per_epoch,
                                             lambda ep: ep * per_epoch)).set_xlabel("epoch")
        ax.set_xlabel("iteration")
    else:
        ax.set_xlabel("iteration" if n else "epoch")
    if log and plotted:
        low = min(float(np.min(p)) for p in plotted)
        ax.set_yscale("log" if low > 0 else "symlog")
        if low > 0 and max(float(np.max(p)) for p in plotted) < 10 * low:
            # Less than a decade: label the minor ticks plainly instead of "3×10²".
            plain = FuncFormatter(lambda value, _: f"{value:g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if plotted:
        ax.legend(loc="upper right")


def loss_curve(history: Any, ax=None, log: bool = False, title: str = "Training loss",
               ylabel: str = "loss (nats/image)",
               iterations_per_epoch: int | None = None) -> Figure:
    """Loss per iteration (light), its moving average, and the test loss at the end of each
    epoch, from a ``train.History`` (or its ``to_dict()``).

    Epoch ends are placed at multiples of ``iterations_per_epoch``; by default it is
    inferred as iterations / completed epochs, which is right for a finished run.
    """
    iteration_loss, epochs = _history_parts(history)
    fig, ax = _new_axes(ax, (BOOK_WIDTH, 4.0))
    _draw_loss_curve(ax, iteration_loss, epochs, log, title, ylabel, iterations_per_epoch)
    return fig


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (notebook, lab, Colab), where rich output can be shown."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveLossPlot:
    """``fit`` callback that redraws the loss curve while training, like MATLAB's
    training-progress window. In a notebook the same output cell is updated in place
    (an IPython display handle, so no flicker); elsewhere it only records the losses,
    and ``.figure`` gives the final static figure."""

    def __init__(self, every: int = 20, log: bool = False, title: str = "Training loss",
                 ylabel: str = "loss (nats/image)") -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1 iteration; got {every}")
        self.every, self.log, self.title, self.ylabel = every, log, title, ylabel
        self.iterations: list[int] = []
        self.losses: list[float] = []
        self.history: Any = None
        self.iterations_per_epoch: int | None = None  # from the trainer's state, when it says
        self.live = _in_notebook()
        self._figure: Figure | None = None
        self._handle = None

    # ---- callback hooks
    def _remember(self, state: Any) -> None:
        self.history = getattr(state, "history", self.history)
        self.iterations_per_epoch = getattr(state, "iterations_per_epoch",
                                            self.iterations_per_epoch)

    def on_iteration(self, state: Any) -> None:
        self._remember(state)
        loss = getattr(state, "loss", None)
        if loss is not None:
            self.losses.append(float(loss))
            self.iterations.append(int(getattr(state, "iteration", len(self.losses))))
        if self.live and len(self.losses) % self.every == 0:
            self._show()

    def on_epoch_end(self, state: Any) -> None:
        self._remember(state)  # state.loss here is the epoch mean, not an iteration's loss
        if self.live:
            self._show()

    # ---- drawing
    def _data(self) -> tuple[list[float], list[dict]]:
        """Prefer the trainer's History (complete after a resume); fall back to our record."""
        iteration_loss, epochs = _history_parts(self.history) if self.history is not None else ([], [])
        if len(iteration_loss) < len(self.losses):
            iteration_loss = self.losses
        return iteration_loss, epochs

    def _redraw(self) -> Figure:
        if self._figure is None:
            self._figure, _ = plt.subplots(figsize=(BOOK_WIDTH, 4.0), layout="constrained")
            plt.close(self._figure)  # keep pyplot from showing a second copy at cell end
        self._figure.clear()
        ax = self._figure.add_subplot()
        _draw_loss_curve(ax, *self._data(), self.log, self.title, self.ylabel,
                         self.iterations_per_epoch)
        return self._figure

    def _show(self) -> None:
        from IPython.display import Image, display

        buffer = io.BytesIO()
        self._redraw().savefig(buffer, format="png", dpi=100)
        picture = Image(data=buffer.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(picture, display_id=True)
        else:
            self._handle.update(picture)

    @property
    def figure(self) -> Figure:
        """The loss curve with everything recorded so far, as a static figure."""
        return self._redraw()


# --------------------------------------------------------------------------- samples during training

class SampleSnapshots:
    """``fit`` callback that decodes the same ``n`` latent points after every epoch, so
    the frames show one set of samples sharpening as training goes on.

    ``frames`` holds one uint8 grid per epoch and ``titles`` the matching "epoch k";
    pass both to :func:`save_training_animation`. For a conditional model the samples
    cycle through the classes 0, 1, 2, ...
    """

    def __init__(self, n: int = 16, seed: int = 0, ncols: int | None = None) -> None:
        self.n, self.seed, self.ncols = n, seed, ncols
        self.z: torch.Tensor | None = None
        self.frames: list[np.ndarray] = []
        self.epochs: list[int] = []

    def fixed_z(self, latent_dim: int, device: torch.device) -> torch.Tensor:
        """The seeded latent points (drawn on the CPU, so every device decodes the same z)."""
        if self.z is None or self.z.shape[1] != latent_dim:
            generator = torch.Generator().manual_seed(self.seed)
            self.z = torch.randn(self.n, latent_dim, generator=generator)
        return self.z.to(device)

    def on_epoch_end(self, state: Any) -> None:
        model = state.model
        z = self.fixed_z(int(model.latent_dim), _model_device(model))
        extra = ()
        if getattr(model, "conditional", False):  # cycle through the classes, like model.sample
            extra = (torch.arange(len(z), device=z.device) % int(model.num_classes),)
        with inference(model):
            images = model.decode(z, *extra)
        grid = tile(images, ncols=self.ncols)
        self.frames.append(np.round(grid * 255.0).astype(np.uint8))
        self.epochs.append(int(getattr(state, "epoch", len(self.frames))))

    @property
    def titles(self) -> list[str]:
        return [f"epoch {e}" for e in self.epochs]


def save_training_animation(frames: Sequence[Any], path: str | os.PathLike, fps: float = 2,
                            titles: Sequence[str] | None = None) -> Path:
    """Write frames (2-D grids such as ``SampleSnapshots.frames``, or image batches, which
    are tiled) to an animated GIF with matplotlib's PillowWriter; each frame is titled
    (default "epoch 1", "epoch 2", ...). Written to a temp file and renamed."""
    from matplotlib.animation import PillowWriter

    grids = []
    for frame in frames:
        array = _to_numpy(frame)
        grids.append(_as_images(array)[0] if array.ndim == 2 else tile(array))
    if not grids:
        raise ValueError("frames is empty: nothing to animate (did SampleSnapshots run for an epoch?)")
    if titles is None:
        titles = [f"epoch {k}" for k in range(1, len(grids) + 1)]
    if len(titles) != len(grids):
        raise ValueError(f"got {len(titles)} titles for {len(grids)} frames")
    if fps <= 0:
        raise ValueError(f"fps must be > 0; got {fps}")

    height, width = grids[0].shape
    fig, ax = plt.subplots(figsize=(4.0, 4.0 * height / width + 0.3), layout="constrained")
    try:
        picture = ax.imshow(grids[0], **IMAGE_STYLE)
        ax.set_axis_off()
        heading = ax.set_title(titles[0])
        writer = PillowWriter(fps=fps)
        with _atomic_target(path, ".gif", "save_training_animation") as tmp:
            with writer.saving(fig, str(tmp), dpi=100):
                for grid, text in zip(grids, titles):
                    if grid.shape != (height, width):
                        raise ValueError(f"all frames must have the same size; got {grid.shape} "
                                         f"after {(height, width)}")
                    picture.set_data(grid)
                    heading.set_text(text)
                    writer.grab_frame()
    finally:
        plt.close(fig)
    return Path(path)
