"""What a training run records and reports: its history, what callbacks see, its errors.

:class:`RunRecorder` is the bookkeeping ``vae_course.train.fit`` does around its epochs, kept
here so that ``fit`` itself reads like the training loop of chapter 6.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import save_checkpoint
from .evaluate import evaluate_elbo
from .rng import preserved_rng


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names where and what to try."""

    def __init__(self, epoch: int, iteration: int, loss: float, *, global_iteration: int | None = None,
                 lr: float | None = None, checkpoint: str | os.PathLike | None = None,
                 saved_epoch: int | None = None):
        self.epoch, self.iteration, self.loss = epoch, iteration, loss
        self.global_iteration = global_iteration
        where = f"epoch {epoch}, iteration {iteration}"
        if global_iteration is not None:
            where += f" (iteration {global_iteration} of the run)"
        lr_text = f" (now {lr:g})" if lr is not None else ""
        message = (f"the training loss became {loss} at {where}. Try a lower learning rate{lr_text}, "
                   f"e.g. 10x smaller; check that the images are finite and lie in [0, 1] "
                   f"(x.min(), x.max(), torch.isfinite(x).all()); with bf16=True, try bf16=False.")
        if checkpoint is not None:
            message += (f" The checkpoint {checkpoint} still holds epoch {saved_epoch}, the last "
                        f"completed one; continue from it with resume=True and the lower lr.")
        super().__init__(message)


@dataclass
class History:
    """What a run recorded: the loss of every iteration and a summary of every epoch.

    Each ``epochs`` entry is a dict with ``epoch`` (1-based), ``train_loss``,
    ``train_reconstruction``, ``train_kl`` (means over the epoch's images, while the weights
    were changing, as Keras and MATLAB report them), ``test_loss``, ``test_reconstruction``,
    ``test_kl`` (after the epoch; ``None`` without test data) and ``seconds`` (wall time).
    """
    iteration_loss: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"iteration_loss": [float(v) for v in self.iteration_loss],
                "epochs": [dict(record) for record in self.epochs]}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls(iteration_loss=list(data.get("iteration_loss", [])),
                   epochs=[dict(record) for record in data.get("epochs", [])])


@dataclass
class TrainState:
    """What callbacks see.  ``iteration`` counts steps over the whole run (1-based, equal to
    ``len(history.iteration_loss)``); ``loss`` is that step's batch loss, or at epoch end the
    epoch's mean train loss."""
    model: nn.Module
    history: History
    epoch: int
    iteration: int
    loss: float | None
    epochs: int
    iterations_per_epoch: int
    device: torch.device


def check_callbacks(callbacks: Iterable[Any]) -> list[Any]:
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not (callable(getattr(cb, "on_iteration", None)) or callable(getattr(cb, "on_epoch_end", None))):
            raise TypeError(f"callback {cb!r} has neither on_iteration(state) nor on_epoch_end(state); "
                            f"pass objects such as vae_course.monitors.LiveLossPlot()")
    return callbacks


class RunRecorder:
    """What ``fit`` does around its epochs: the history, NaN checks, the progress bar, the
    test ELBO, checkpoints and callbacks (which see the random state left as it was)."""

    def __init__(self, model, history, callbacks, epochs, steps_per_epoch, device, checkpoint,
                 start_epoch, lr, progress):
        self.model, self.history, self.epochs, self.device = model, history, epochs, device
        self.steps_per_epoch, self.checkpoint, self.lr = steps_per_epoch, checkpoint, lr
        self.epoch = self.saved_epoch = start_epoch
        self.on_iteration = [cb.on_iteration for cb in callbacks if callable(getattr(cb, "on_iteration", None))]
        self.on_epoch_end = [cb.on_epoch_end for cb in callbacks if callable(getattr(cb, "on_epoch_end", None))]
        self.bar = tqdm(total=epochs * steps_per_epoch, initial=min(start_epoch, epochs) * steps_per_epoch,
                        disable=not progress, unit="it", dynamic_ncols=True,
                        desc=f"epoch {start_epoch}/{epochs}")

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.started, self.step_in_epoch = epoch, time.perf_counter(), 0
        self.bar.set_description(f"epoch {epoch}/{self.epochs}")

    def record_steps(self, rows: list[list[float]]) -> None:
        """Steps read back from the device: check each loss, record it, tell the callbacks."""
        for loss, _reconstruction, _kl in rows:
            self.step_in_epoch += 1
            if not math.isfinite(loss):
                raise NonFiniteLossError(self.epoch, self.step_in_epoch, loss,
                                         global_iteration=len(self.history.iteration_loss) + 1, lr=self.lr,
                                         checkpoint=self.checkpoint, saved_epoch=self.saved_epoch)
            self.history.iteration_loss.append(loss)
            self._callbacks(self.on_iteration, loss)
        self.bar.update(len(rows))
        self.bar.set_postfix(loss=f"{rows[-1][0]:.2f}", refresh=False)

    def end_epoch(self, means, rng_state, test, binarize, loss_kwargs, optimizer, config) -> None:
        """The epoch's record (with the test ELBO), the checkpoint, then the callbacks."""
        record = {"epoch": self.epoch, "train_loss": means[0], "train_reconstruction": means[1],
                  "train_kl": means[2], "test_loss": None, "test_reconstruction": None, "test_kl": None}
        if test is not None:
            with preserved_rng(self.device):
                result = evaluate_elbo(self.model, test[0], y=test[1], binarize=binarize, **loss_kwargs)
            record.update(test_loss=result["loss"], test_reconstruction=result["reconstruction"],
                          test_kl=result["kl"])
        record["seconds"] = time.perf_counter() - self.started
        self.history.epochs.append(record)
        if self.checkpoint is not None:
            save_checkpoint(self.checkpoint, model=self.model, optimizer=optimizer, config=config,
                            history=self.history, epoch=self.epoch, rng_state=rng_state)
            self.saved_epoch = self.epoch
        postfix = {"loss": f"{means[0]:.2f}"}
        if record["test_loss"] is not None:
            postfix["test"] = f"{record['test_loss']:.2f}"
        self.bar.set_postfix(postfix)
        self._callbacks(self.on_epoch_end, means[0])

    def _callbacks(self, callbacks: list, loss: float) -> None:
        if callbacks:
            state = TrainState(self.model, self.history, self.epoch, len(self.history.iteration_loss), loss,
                               self.epochs, self.steps_per_epoch, self.device)
            with preserved_rng(self.device):
                for callback in callbacks:
                    callback(state)

    def interrupted(self) -> None:
        self.bar.close()
        if self.checkpoint is None:
            print(f"\nTraining interrupted in epoch {self.epoch}; no checkpoint was written (pass "
                  f"checkpoint=PATH to fit to be able to resume). The model keeps its current weights.",
                  file=sys.stderr)
        else:
            print(f"\nTraining interrupted in epoch {self.epoch}. {self.checkpoint} holds epoch "
                  f"{self.saved_epoch}, the last completed one. Continue with the same call and "
                  f"resume=True (fit(..., checkpoint=..., resume=True), train_recipe(..., resume=True) "
                  f"or `vae-course train ... --resume`).", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
