"""The schedules practitioners choose between now: warm-up + cosine, warm-up + linear decay to
zero, warmup-stable-decay (WSD), and AlgoPerf v0.5's cyclic warm-up + cosine entry.

Written like the older built-ins (``formulas``): ``formula(step, xp, **params)`` with ``step`` an
int64 array or tensor, every phase boundary an integer comparison of the step, only the position
inside a phase in float64. Each takes its total length (``total_steps``, role ``length``) and
holds its final rate after it; a warm-up (role ``warmup``) and a cooldown (role ``cooldown``) may
be written tied to the run (``"run * 0.05"``) or the epoch (``"epoch * 2"``) like any length.

Sources (the tests check each against its anchor's own values):

- ``warmup_cosine`` / ``warmup_linear``: transformers ``src/transformers/optimization.py``,
  ``get_cosine_schedule_with_warmup`` / ``get_linear_schedule_with_warmup`` (``end_lr = 0``);
  optax ``warmup_cosine_decay_schedule`` with ``init_value = 0`` (its ``decay_steps`` counts the
  warm-up, as ``total_steps`` does here).
- ``wsd``: transformers ``get_wsd_schedule`` (``num_training_steps``; ``min_lr_ratio =
  end_lr / peak_lr``; its warm-up rises from that minimum); Hägele et al. 2024 (arXiv 2405.18392).
- ``warmup_cosine_cycles``: AlgoPerf v0.5 external-tuning entry ``cyclic_lr``
  (mlcommons/submissions_algorithms, ``previous_leaderboards/algoperf_v05/submissions/
  external_tuning/cyclic_lr/submission.py``, ``WarmCosineCycles.schedule``).
"""

from __future__ import annotations

import math

from clrbench.errors import ScheduleError
from clrbench.schedules.spec import (
    COOLDOWNS,
    Param,
    _cooldown,
    _count,
    _count_or_zero,
    _rate,
    _rate_or_zero,
    builtin,
)


def _real(step, xp):
    return xp.asarray(step, dtype=xp.float64)


# --- cross-parameter checks ---


def _end_le_peak(name: str, p: dict) -> None:
    if p["end_lr"] > p["peak_lr"]:
        raise ScheduleError(
            f"{name}: end_lr must be <= peak_lr={p['peak_lr']!r}, got {p['end_lr']!r}"
        )


def _warmup_within(name: str, p: dict) -> None:
    if p["warmup_steps"] >= p["total_steps"]:
        raise ScheduleError(
            f"{name}: warmup_steps must be < total_steps={p['total_steps']:,}, "
            f"got {p['warmup_steps']:,}"
        )


def _phases_within(name: str, p: dict) -> None:
    if p["warmup_steps"] + p["decay_steps"] > p["total_steps"]:
        raise ScheduleError(
            f"{name}: warmup_steps + decay_steps must be <= total_steps={p['total_steps']:,}, "
            f"got {p['warmup_steps']:,} + {p['decay_steps']:,}"
        )


def _warmup_within_cycle(name: str, p: dict) -> None:
    # AlgoPerf divides by the cosine's length, total_steps / cycles - warmup_steps
    if p["cycles"] * p["warmup_steps"] >= p["total_steps"]:
        raise ScheduleError(
            f"{name}: warmup_steps must be < total_steps / cycles = "
            f"{p['total_steps'] / p['cycles']:,.6g}, got {p['warmup_steps']:,}"
        )


_PEAK = Param("peak_lr", _rate, "rate at the end of the warm-up", role="rate")
_WARMUP = Param(
    "warmup_steps", _count_or_zero, "iterations of linear warm-up from 0 (0: none)", role="warmup"
)
_TOTAL = Param(
    "total_steps", _count, "iterations until end_lr, held after", role="length"
)  # fmt: skip
_END = Param("end_lr", _rate_or_zero, "rate at total_steps (<= peak_lr)", 0.0, role="rate")


def _ramp(step, xp, peak_lr, warmup_steps):
    """``peak_lr * step / warmup_steps`` (a warm-up of 0 steps is never selected)."""
    return peak_lr * _real(step, xp) / max(1, warmup_steps)


def _progress(step, xp, start, length):
    """How far ``step`` is into a phase of ``length`` iterations from ``start``, in [0, 1]
    (the clipping done on the integer step)."""
    inside = xp.minimum(xp.maximum(step - start, 0), length)
    return _real(inside, xp) / length


@builtin(
    "warmup_cosine",
    _PEAK,
    _WARMUP,
    _TOTAL,
    _END,
    relations=(_end_le_peak, _warmup_within),
)
def _warmup_cosine(step, xp, peak_lr, warmup_steps, total_steps, end_lr):
    """Linear warm-up to peak_lr, then a half cosine to end_lr at total_steps (transformers).

    ``peak_lr * step / W`` for ``step < W``, then ``end_lr + (peak_lr - end_lr) * (1 +
    cos(pi * (step - W) / (T - W))) / 2``, ``end_lr`` from ``T`` on; transformers'
    ``get_cosine_schedule_with_warmup`` at ``end_lr = 0``.
    """
    p = _progress(step, xp, warmup_steps, total_steps - warmup_steps)
    cosine = end_lr + (peak_lr - end_lr) * 0.5 * (1.0 + xp.cos(math.pi * p))
    return xp.where(step < warmup_steps, _ramp(step, xp, peak_lr, warmup_steps), cosine)


@builtin(
    "warmup_linear",
    _PEAK,
    _WARMUP,
    _TOTAL,
    _END,
    relations=(_end_le_peak, _warmup_within),
)
def _warmup_linear(step, xp, peak_lr, warmup_steps, total_steps, end_lr):
    """Linear warm-up to peak_lr, then linear decay to end_lr at total_steps (transformers).

    ``peak_lr * step / W`` for ``step < W``, then ``end_lr + (peak_lr - end_lr) * (T - step) /
    (T - W)``, ``end_lr`` from ``T`` on; transformers' ``get_linear_schedule_with_warmup`` at
    ``end_lr = 0`` (linear decay to zero: Defazio et al. 2023, arXiv 2310.07831).
    """
    p = _progress(step, xp, warmup_steps, total_steps - warmup_steps)
    linear = end_lr + (peak_lr - end_lr) * (1.0 - p)
    return xp.where(step < warmup_steps, _ramp(step, xp, peak_lr, warmup_steps), linear)


def _cooldown_factor(p, xp, cooldown):
    """1 at the cooldown's start, 0 at its end: ``1 - p``, ``(1 + cos(pi p)) / 2`` or
    ``1 - sqrt(p)`` (chosen at trace time)."""
    if cooldown == "linear":
        return 1.0 - p
    if cooldown == "cosine":
        return 0.5 * (1.0 + xp.cos(math.pi * p))
    return 1.0 - xp.sqrt(p)


@builtin(
    "wsd",
    _PEAK,
    _WARMUP,
    Param("decay_steps", _count, "iterations of the cooldown to end_lr", role="cooldown"),
    _TOTAL,
    _END,
    Param("cooldown", _cooldown, f"cooldown shape: {', '.join(COOLDOWNS)}", "linear"),
    relations=(_end_le_peak, _phases_within),
)
def _wsd(step, xp, peak_lr, warmup_steps, decay_steps, total_steps, end_lr, cooldown):
    """Warmup-stable-decay: warm-up, peak_lr held, a cooldown over the last decay_steps.

    transformers' ``get_wsd_schedule(num_warmup_steps=W, num_decay_steps=D,
    num_training_steps=T, decay_type=cooldown, min_lr_ratio=end_lr / peak_lr)``:
    ``end_lr + (peak_lr - end_lr) * step / W`` for ``step < W``; ``peak_lr`` until ``T - D``;
    then ``end_lr + (peak_lr - end_lr) * f(p)``, ``p = (step - (T - D)) / D``, ``f`` = ``1 - p``
    (linear), ``(1 + cos(pi p)) / 2`` (cosine) or ``1 - sqrt(p)`` (1-sqrt; Hägele et al. 2024);
    ``end_lr`` from ``T`` on.
    """
    span = peak_lr - end_lr
    warm = end_lr + span * _real(step, xp) / max(1, warmup_steps)
    p = _progress(step, xp, total_steps - decay_steps, decay_steps)
    after = end_lr + span * _cooldown_factor(p, xp, cooldown)
    return xp.where(step < warmup_steps, warm, after)


@builtin(
    "warmup_cosine_cycles",
    _PEAK,
    Param("warmup_steps", _count, "iterations of linear warm-up in each cycle", role="warmup"),
    Param("total_steps", _count, "iterations of all the cycles", role="length"),
    Param("cycles", _count, "warm-up + cosine cycles over total_steps (AlgoPerf: 1 or 2)", 2),
    Param("end_lr", _rate_or_zero, "rate at each cycle's start and end", 0.0, role="rate"),
    relations=(_end_le_peak, _warmup_within_cycle),
)
def _warmup_cosine_cycles(step, xp, peak_lr, warmup_steps, total_steps, cycles, end_lr):
    """AlgoPerf v0.5's cyclic entry: ``cycles`` warm-up + cosine cycles of ``T / cycles`` each.

    ``WarmCosineCycles.schedule(t)`` of ``external_tuning/cyclic_lr/submission.py``, with
    ``L = T / C``: cycle ``phi`` holds ``phi L < t <= (phi + 1) L`` (``t = 0`` in cycle 0);
    ``end_lr + (peak_lr - end_lr) (t - phi L) / W`` while ``t <= phi L + W``, then
    ``end_lr + (peak_lr - end_lr) (1 + cos(pi (t - W - phi L) / (L - W))) / 2``; ``end_lr``
    after ``T``. ``L`` need not be whole: the boundaries are compared as ``C t`` against
    ``phi T`` in integers. (AlgoPerf's scheduler is first stepped after the first update, so its
    step 0 runs at the optimizer's initial rate, peak_lr; here step 0 is the schedule's own
    value, end_lr.)
    """
    phi = xp.maximum(xp.floor_divide(cycles * step - 1, total_steps), 0)  # cycle of step
    offset = _real(phi * total_steps, xp) / cycles  # phi L
    position = _real(step, xp) - offset
    warming = cycles * step - phi * total_steps <= cycles * warmup_steps
    span = peak_lr - end_lr
    ramp = end_lr + span * position / warmup_steps
    angle = math.pi * (position - warmup_steps) / (total_steps / cycles - warmup_steps)
    cosine = end_lr + span * 0.5 * (1.0 + xp.cos(angle))
    rate = xp.where(warming, ramp, cosine)
    return xp.where(step > total_steps, end_lr + 0.0 * position, rate)
