"""The built-in learning-rate formulas, their parameter checks and the registry they live in.

Every schedule is written once as ``formula(step, xp, **params)`` where ``xp`` is ``numpy`` or
``tensorflow.experimental.numpy`` and ``step`` an int64 array of 0-based global optimizer steps, so
the numpy evaluation (plots, tests) and the in-graph Keras evaluation share one implementation.

Boundaries are integer arithmetic: every epoch, cycle, decay and restart index is an integer
floor-division (or remainder) of the int64 step, never ``floor(step / n)`` in floating point. In a
``tf.function`` the graph optimiser may turn ``step / n`` into ``step * (1 / n)``, which lands just
below an exact multiple (2345 / 2345 -> 0.99999...), so a float ``floor`` moved per-epoch decays
one epoch late. Only the smooth parts of a formula (position in a cycle, an exponent) are float64.

Granularity: ``"iteration"`` evaluates ``f(step)``; ``"epoch"`` holds the rate constant within an
epoch at its first step, ``f(steps_per_epoch * (step // steps_per_epoch))`` (Keras
``LearningRateScheduler`` semantics). Step-like parameters (``step_size``, ``every_steps``,
``decay_steps``, ``period``, ``first_period``, ``total_steps``, ``num_steps``) are always in
*iterations*, also for epoch granularity.

Each parameter is declared with its check and its role (``spec``: rate, length, cycle, ...).
Formulas from outside the package (plug-ins), compositions and Keras's own schedules go through
the same registry and checks: see ``plugins``, ``compose`` and ``keras_adapter``.
"""

from __future__ import annotations

import math

from clrbench.errors import ScheduleError
from clrbench.schedules.spec import (
    Param,
    _anneal,
    _at_least_one,
    _count,
    _factor,
    _fraction,
    _rate,
    _rate_or_zero,
    _sweep_mode,
    builtin,
)

# --- cross-parameter checks: each takes (schedule name, params) ---


def _base_le_max(name: str, p: dict) -> None:
    if p["max_lr"] < p["base_lr"]:
        raise ScheduleError(
            f"{name}: max_lr must be >= base_lr={p['base_lr']!r}, got {p['max_lr']!r}"
        )


def _min_lt_max(name: str, p: dict) -> None:
    if p["min_lr"] >= p["max_lr"]:
        raise ScheduleError(f"{name}: min_lr must be < max_lr={p['max_lr']!r}, got {p['min_lr']!r}")


def _warmup_not_empty(name: str, p: dict) -> None:
    # Phase 1 ends at pct_start * total_steps - 1, and PyTorch divides by that length.
    if p["pct_start"] * p["total_steps"] <= 1:
        raise ScheduleError(
            f"{name}: pct_start * total_steps must be > 1, "
            f"got pct_start={p['pct_start']!r} with total_steps={p['total_steps']!r}"
        )


_p = Param


_BASE = _p("base_lr", _rate, "lower learning rate of the cycle", role="rate")
_MAX = _p("max_lr", _rate, "upper learning rate of the cycle", role="rate")
_STEP_SIZE = _p("step_size", _count, "iterations per half cycle", role="half_cycle")
_CLR = (_BASE, _MAX, _STEP_SIZE)


# --- formulas: (step, xp, **params) -> lr, step an int64 array, xp numpy or tnp ---


def _real(step, xp):
    """An integer step (or index) as float64, for the smooth parts of a formula."""
    return xp.asarray(step, dtype=xp.float64)


@builtin("constant", _p("lr", _rate, "the learning rate", role="rate"))
def _constant(step, xp, lr):
    """A constant rate: ``lr``."""
    return lr + 0.0 * _real(step, xp)


@builtin(
    "step_decay",
    _p("initial_lr", _rate, "rate at step 0", role="rate"),
    _p("drop", _factor, "factor applied every every_steps, in (0, 1]"),
    _p("every_steps", _count, "iterations between drops", role="interval"),
)
def _step_decay(step, xp, initial_lr, drop, every_steps):
    """Step decay: ``initial_lr * drop ** (step // every_steps)`` (integer division)."""
    return initial_lr * xp.power(drop, _real(xp.floor_divide(step, every_steps), xp))


@builtin(
    "exp_decay",
    _p("initial_lr", _rate, "rate at step 0", role="rate"),
    _p("decay_rate", _factor, "factor applied per decay_steps, in (0, 1]"),
    _p(
        "decay_steps",
        _count,
        "iterations over which the rate is multiplied by decay_rate",
        role="steps",
    ),
)
def _exp_decay(step, xp, initial_lr, decay_rate, decay_steps):
    """Exponential decay: ``initial_lr * decay_rate ** (step / decay_steps)``."""
    return initial_lr * xp.power(decay_rate, _real(step, xp) / decay_steps)


def _clr_wave(step, xp, step_size):
    """Smith 2015 (arXiv 1506.01186): ``cycle = floor(1 + step / (2 s))``,
    ``x = |step / s - 2 cycle + 1|``, returns ``(cycle, max(0, 1 - x))``.

    In integers: ``cycle = 1 + step // (2 s)`` and, with ``r = step % (2 s)`` the position in the
    cycle, ``x = |r / s - 1|`` (the same value, exact at every cycle boundary).
    """
    cycle = 1 + xp.floor_divide(step, 2 * step_size)
    position = _real(xp.remainder(step, 2 * step_size), xp)
    return _real(cycle, xp), 1.0 - xp.abs(position / step_size - 1.0)


@builtin("triangular", *_CLR, relations=(_base_le_max,))
def _triangular(step, xp, base_lr, max_lr, step_size):
    """Cyclical LR, triangle base_lr -> max_lr -> base_lr every 2*step_size (Smith 2015).

    ``lr = base_lr + (max_lr - base_lr) * max(0, 1 - x)``; equals PyTorch ``CyclicLR``
    (mode="triangular", step_size_up=step_size).
    """
    _, wave = _clr_wave(step, xp, step_size)
    return base_lr + (max_lr - base_lr) * wave


@builtin("triangular2", *_CLR, relations=(_base_le_max,))
def _triangular2(step, xp, base_lr, max_lr, step_size):
    """Cyclical LR whose amplitude halves every cycle (Smith 2015).

    ``lr = base_lr + (max_lr - base_lr) * max(0, 1 - x) / 2 ** (cycle - 1)``; equals PyTorch
    ``CyclicLR`` (mode="triangular2").
    """
    cycle, wave = _clr_wave(step, xp, step_size)
    return base_lr + (max_lr - base_lr) * wave * xp.power(0.5, cycle - 1.0)


@builtin(
    "exp_range",
    *_CLR,
    _p("gamma", _factor, "amplitude factor per iteration, in (0, 1]", role="per_step"),
    relations=(_base_le_max,),
)
def _exp_range(step, xp, base_lr, max_lr, step_size, gamma):
    """Cyclical LR whose amplitude decays as gamma ** step (Smith 2015).

    ``lr = base_lr + (max_lr - base_lr) * max(0, 1 - x) * gamma ** step``; equals PyTorch
    ``CyclicLR`` (mode="exp_range", scale_mode="iterations").
    """
    _, wave = _clr_wave(step, xp, step_size)
    return base_lr + (max_lr - base_lr) * wave * xp.power(gamma, _real(step, xp))


@builtin(
    "sine_exp",
    _BASE,
    _MAX,
    _p("period", _count, "iterations per full sine cycle", role="cycle"),
    _p("decay", _factor, "amplitude factor per iteration, in (0, 1]", role="per_step"),
    relations=(_base_le_max,),
)
def _sine_exp(step, xp, base_lr, max_lr, period, decay):
    """Sine wave between base_lr and max_lr with exponentially decaying amplitude.

    ``lr = base_lr + (max_lr - base_lr) * decay ** step * (1 - cos(2 pi step / period)) / 2``:
    base_lr at step 0, the (decayed) peak at period / 2, back to base_lr at period. A smooth
    variant of Smith 2015's exp_range. The phase is taken from ``step % period`` (exactly base_lr
    at every multiple of the period).
    """
    phase = _real(xp.remainder(step, period), xp) / period
    wave = (1.0 - xp.cos(2.0 * math.pi * phase)) / 2.0
    return base_lr + (max_lr - base_lr) * xp.power(decay, _real(step, xp)) * wave


def _anneal_cos(start, end, pct, xp):
    return end + (start - end) / 2.0 * (1.0 + xp.cos(math.pi * pct))


def _anneal_linear(start, end, pct, xp):
    return start + (end - start) * pct


@builtin(
    "one_cycle",
    _p("max_lr", _rate, "peak learning rate", role="rate"),
    _p("total_steps", _count, "iterations in the cycle", role="length"),
    _p("pct_start", _fraction, "fraction of total_steps spent warming up", 0.3),
    _p("div_factor", _at_least_one, "initial_lr = max_lr / div_factor", 25.0),
    _p("final_div_factor", _at_least_one, "min_lr = initial_lr / final_div_factor", 1e4),
    _p("anneal", _anneal, "'cos' or 'linear' interpolation", "cos"),
    relations=(_warmup_not_empty,),
)
def _one_cycle(step, xp, max_lr, total_steps, pct_start, div_factor, final_div_factor, anneal):
    """1cycle: warm up max_lr/div_factor -> max_lr, then anneal to a far lower minimum (Smith 2018).

    Smith & Topin 2018 (arXiv 1708.07120); identical to PyTorch ``OneCycleLR`` (three_phase=False):
    phase 1 to step ``pct_start * total_steps - 1`` (initial -> max_lr), phase 2 to
    ``total_steps - 1`` (max_lr -> initial / final_div_factor); cos anneal
    ``end + (start - end) / 2 * (1 + cos(pi * pct))``, linear ``start + (end - start) * pct``.
    From ``total_steps - 1`` on the final rate is held (PyTorch raises past total_steps).
    """
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    warmup_end = pct_start * total_steps - 1.0
    last = total_steps - 1.0
    interpolate = _anneal_cos if anneal == "cos" else _anneal_linear  # chosen at trace time
    step = _real(xp.minimum(step, total_steps - 1), xp)
    rising = interpolate(initial_lr, max_lr, step / warmup_end, xp)
    falling = interpolate(max_lr, min_lr, (step - warmup_end) / (last - warmup_end), xp)
    return xp.where(step <= warmup_end, rising, falling)


@builtin(
    "sgdr",
    _p("max_lr", _rate, "rate at each restart", role="rate"),
    _p("min_lr", _rate_or_zero, "rate at the end of each period (may be 0)", role="rate"),
    _p("first_period", _count, "iterations in the first period", role="cycle"),
    _p("t_mult", _count, "integer growth factor of the period after a restart", 1, role="growth"),
    relations=(_min_lt_max,),
)
def _sgdr(step, xp, max_lr, min_lr, first_period, t_mult):
    """SGDR: cosine annealing max_lr -> min_lr with warm restarts (Loshchilov & Hutter 2017).

    ``lr = min_lr + (max_lr - min_lr) * (1 + cos(pi * t_cur / t_i)) / 2``; ``t_cur`` counts steps
    since the last restart, ``t_i = first_period * t_mult ** n`` in cycle n. Equals PyTorch
    ``CosineAnnealingWarmRestarts(T_0=first_period, T_mult=t_mult, eta_min=min_lr)``.
    """
    if t_mult == 1:
        since_restart, period = xp.remainder(step, first_period), first_period
    else:
        since_restart, period = _sgdr_position(step, xp, first_period, t_mult)
    angle = math.pi * _real(since_restart, xp) / _real(period, xp)
    return min_lr + (max_lr - min_lr) * (1.0 + xp.cos(angle)) / 2.0


def _sgdr_position(step, xp, first_period, t_mult):
    """Steps since the last restart and the current period (both int64) for growing periods.

    Cycle n starts at the integer ``first_period * (t_mult ** n - 1) // (t_mult - 1)``; the
    closed-form ``n = floor(log_t_mult(1 + step (t_mult - 1) / first_period))`` can be off by one
    at a restart through rounding, so it is corrected against the exact integer cycle starts.
    """

    def start(n):
        return first_period * (xp.power(t_mult, n) - 1) // (t_mult - 1)

    growth = xp.log(1.0 + _real(step, xp) * (t_mult - 1.0) / first_period) / math.log(t_mult)
    n = xp.asarray(xp.floor(growth), dtype=xp.int64)
    n = xp.where(start(n + 1) <= step, n + 1, n)
    n = xp.where(start(n) > step, n - 1, n)
    return step - start(n), first_period * xp.power(t_mult, n)


@builtin(
    "range_test",
    _p("min_lr", _rate, "rate at step 0", role="rate"),
    _p("max_lr", _rate, "rate reached at num_steps and held after", role="rate"),
    _p("num_steps", _count, "iterations of the sweep from min_lr to max_lr", role="length"),
    _p("mode", _sweep_mode, "'exp' (geometric) or 'linear' growth", "exp"),
    relations=(_min_lt_max,),
)
def _range_test(step, xp, min_lr, max_lr, num_steps, mode):
    """LR range test: the rate grows from min_lr to max_lr over num_steps, then is held.

    ``exp``: ``min_lr * (max_lr / min_lr) ** (step / num_steps)`` (fastai's ``lr_find``);
    ``linear``: ``min_lr + (max_lr - min_lr) * step / num_steps`` (Smith 2015, arXiv 1506.01186);
    ``step`` is capped at ``num_steps``.
    """
    fraction = xp.minimum(_real(step, xp) / num_steps, 1.0)
    if mode == "exp":  # chosen at trace time
        return min_lr * xp.power(max_lr / min_lr, fraction)
    return min_lr + (max_lr - min_lr) * fraction
