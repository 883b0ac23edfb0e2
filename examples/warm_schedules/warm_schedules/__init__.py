"""Two learning-rate schedules written for clrbench, as a user would write them.

A formula is ``f(step, xp, **params)``: ``xp`` is numpy or ``tensorflow.experimental.numpy`` and
``step`` an int64 array of optimizer steps. Boundaries (where a phase ends, which stair we are
on) are integer operations on ``step``; only the smooth parts are float64. The annotations are
the parameter checks and roles (``Rate``: a learning rate the study scales; ``Length``: the
shape's length, which an experiment can tie to the run with ``total_steps = "run"``; ``Warmup``,
``Count``: iterations); ``declare`` adds a cross-parameter check, and roles by name where an
annotation's default would be wrong (``stairs`` is a count of stairs, not of iterations).
"""

from __future__ import annotations

import math

from clrbench.schedules import Count, Factor, Length, Rate, RateOrZero, Warmup, declare


def _warmup_shorter_than_run(params: dict) -> None:
    if params["warmup_steps"] >= params["total_steps"]:
        raise ValueError(
            f"warmup_steps must be < total_steps={params['total_steps']}, "
            f"got {params['warmup_steps']}"
        )
    if params["final_lr"] >= params["peak_lr"]:
        raise ValueError(f"final_lr must be < peak_lr={params['peak_lr']}")


@declare(check=_warmup_shorter_than_run)
def warm_cosine(
    step,
    xp,
    peak_lr: Rate,
    warmup_steps: Warmup,
    total_steps: Length,
    final_lr: RateOrZero = 0.0,
):
    """Linear warm-up from 0 to peak_lr over warmup_steps, then cosine to final_lr at total_steps.

    ``lr = peak_lr * step / warmup_steps`` while ``step < warmup_steps``, then
    ``final_lr + (peak_lr - final_lr) * (1 + cos(pi * t)) / 2`` with
    ``t = min(step - warmup_steps, decay) / decay``, ``decay = total_steps - warmup_steps``.
    """
    real = xp.asarray(step, dtype=xp.float64)
    decay = total_steps - warmup_steps
    since = xp.asarray(xp.minimum(step - warmup_steps, decay), dtype=xp.float64)
    cosine = final_lr + (peak_lr - final_lr) * (1.0 + xp.cos(math.pi * since / decay)) / 2.0
    return xp.where(step < warmup_steps, peak_lr * real / warmup_steps, cosine)


@declare(roles={"stairs": "shape"})
def stepped_cycle(step, xp, base_lr: Rate, max_lr: Rate, stair_steps: Count, stairs: Count,
                  drop: Factor = 1.0):  # fmt: skip
    """A staircase from base_lr up to max_lr in ``stairs`` stairs of ``stair_steps`` each, then
    back down, repeated; each cycle's height multiplied by ``drop``.

    ``k = step // stair_steps`` (an integer: the current stair), ``cycle = k // (2 * stairs)``,
    ``level = stairs - |k % (2 stairs) - stairs|``,
    ``lr = base_lr + (max_lr - base_lr) * drop ** cycle * level / stairs``.
    """
    stair = xp.floor_divide(step, stair_steps)
    cycle = xp.floor_divide(stair, 2 * stairs)
    level = stairs - xp.abs(xp.remainder(stair, 2 * stairs) - stairs)
    height = xp.power(drop, xp.asarray(cycle, dtype=xp.float64))
    return base_lr + (max_lr - base_lr) * height * xp.asarray(level, dtype=xp.float64) / stairs
