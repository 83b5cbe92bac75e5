"""What changes from one optimizer step to the next: the KL weight's warm-up (chapter 10) and
the learning rate's one cycle (chapter 11).

Both depend only on the step's index, so a resumed run continues its schedules exactly;
:func:`vae_course.train.fit` applies them.
"""
from __future__ import annotations

import warnings

import torch

# Learning-rate schedules of fit: "constant" (the sources) or "one-cycle" (make_lr_scheduler).
LR_SCHEDULES = ("constant", "one-cycle")
ONE_CYCLE_WARMUP = 0.25  # fraction of the run's steps spent rising to the peak lr


def warmup_beta(step: int, beta: float, warmup_steps: int) -> float:
    """KL warm-up (Bowman et al., 2016; Sonderby et al., 2016): the KL weight at ``step``.

    Rises linearly from 0 at step 0 to ``beta`` at step ``warmup_steps`` and stays there, so
    the encoder learns to use its code before the KL term can switch it off.  Steps count
    optimizer steps from 0 over the whole run; ``warmup_steps=0`` is plain ``beta``.
    """
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def check_lr_schedule(schedule: str) -> None:
    """Refuse a learning-rate schedule that is not one of LR_SCHEDULES, naming the choices."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}; got {schedule!r}")


def make_lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int,
                      start_step: int = 0) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule of a run, positioned at ``start_step`` (None: constant lr).

    ``"one-cycle"`` is ``torch.optim.lr_scheduler.OneCycleLR`` (Smith & Topin, 2019) over the
    run's ``total_steps``: the lr rises from peak/25 to the peak (the optimizer's ``lr``) over
    the first quarter of the steps, then anneals (cosine) to almost 0 at the last step.  A
    large peak speeds training; the warm-up keeps it from diverging at the start, the
    anneal settles the weights at the end.  Adam's momentum is left alone
    (``cycle_momentum=False``).  The lr of a step depends only on its index, so a resumed run
    jumps to ``start_step`` and continues exactly.  A run of fewer than 4 steps keeps ``lr``.
    """
    check_lr_schedule(schedule)
    if schedule == "constant" or total_steps < 4:  # a smoke test of 1-3 steps: no cycle to run
        return None
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[group["lr"] for group in optimizer.param_groups], total_steps=total_steps,
        pct_start=max(ONE_CYCLE_WARMUP, 2 / total_steps), cycle_momentum=False)  # >= 2 warm-up steps
    if start_step:
        with warnings.catch_warnings():  # jumping ahead is not the "step before optimizer.step" mistake
            warnings.filterwarnings("ignore", message="Detected call of")
            scheduler.last_epoch = start_step - 1
            scheduler.step()
    return scheduler
