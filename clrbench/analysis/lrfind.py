"""The learning-rate range test (Smith 2015), read from honest per-batch losses, over seeds.

Each seed trains the standard model from fresh weights while the rate grows every step with the
``range_test`` schedule (exponential by default, or Smith's linear sweep). Each batch's own loss
and accuracy come from the in-graph batch log of ``clrbench.train.batch_log`` (never Keras's
running-mean batch logs), read every ``CHECK_EVERY`` steps; that read is also where the sweep
stops once the loss has diverged.

The reading (``RULE`` says it in one paragraph), per seed and then combined:

- ``smoothed_loss``: a centred running median of the raw batch losses over ``window`` steps, the
  odd number nearest 5 % of the sweep (at least 5; 25 for 500 steps, a quarter of a decade of the
  default sweep), cut short at the ends, non-finite losses left out. Centred, so it does not lag
  the rate the way fastai's running EMA does (at beta = 0.98 by ~50 steps, half a decade here); a
  median, so a single ragged batch neither makes nor hides a minimum.
- divergence: the first step whose loss is not finite or whose smoothed loss exceeds
  ``DIVERGENCE_FACTOR`` (4) times the lowest smoothed loss so far (fastai's 4x, on the centred
  median). The sweep stops at the first check that sees it (at most CHECK_EVERY + window / 2
  steps later).
- the valley: the rates, before divergence, at which the smoothed loss is within
  ``VALLEY_FACTOR`` (1.5) of its minimum. Its low edge is where the loss has (nearly) stopped
  falling, Smith's "accuracy slows"; its high edge is where the loss turns up and ragged on its
  way to divergence. ``max_lr`` is the valley's centre, the geometric mean of the two edges.
- ``base_lr = max_lr / BASE_DIVISOR`` (4): Smith's rule of thumb "set base_lr to 1/3 or 1/4 of
  max_lr".
- combined: the median over seeds of each seed's valley centre, rounded to two significant digits.

Why the valley and not the minimum: on MNIST the loss bottoms out in a flat, noisy plateau about
1.5 decades wide, and where on it the lowest batch-noise dip falls moves by 4x between seeds. The
valley's edges are read where the curve is steep, so they move little (seeds agree on its centre
to within ~1.3x on full MNIST, 1.7x on a 2000-image subset). The low edge alone (Smith's reading
for max_lr) is biased low by a short sweep: the loss is still falling there because the network
has trained for few steps, not because the rate is too small; the centre keeps max_lr a factor of
~5 below the ragged end while well inside the region where the loss still improves. For the same
reason base_lr is not read where the loss first starts to fall: in a one-epoch sweep that point is
set by how many steps have accumulated (it moves with ``--steps`` and ``--min-lr``), not by the
rate. The rate at the lowest smoothed loss is still reported (``lr_min_loss``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clrbench.config.sweep import (
    BASE_DIVISOR,
    DIVERGENCE_FACTOR,
    VALLEY_FACTOR,
    SweepSettings,
)
from clrbench.errors import ClrbenchError

SPREAD_WARNING = 2.0
SUGGESTION_DETAILS = (
    "valley_low_lr",
    "valley_high_lr",
    "valley_loss",
    "lr_min_loss",
    "divergence_lr",
)
RULE = (
    "Per seed: smooth the raw per-batch loss with a centred running median over {window} steps "
    "(5% of the sweep); divergence = the first step whose loss is not finite or whose smoothed "
    f"loss exceeds {DIVERGENCE_FACTOR:g}x the lowest smoothed loss so far; valley = the rates "
    f"before divergence at which the smoothed loss is within {VALLEY_FACTOR:g}x of its minimum; "
    "max_lr = the geometric mean of the valley's lowest and highest rate. Then max_lr = the "
    "median over seeds, rounded to two significant digits, and base_lr = "
    f"max_lr / {BASE_DIVISOR:g} (Smith 2015: base_lr = 1/3 to 1/4 of max_lr)."
)
DATA_COLUMNS = {
    "seed": "int32",
    "step": "int64",
    "lr": "float64",
    "loss": "float64",
    "accuracy": "float64",
    "smoothed_loss": "float64",
}


# --- reading a sweep (pure numpy / pandas) ---


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median over ``window`` steps (shorter at the ends); NaN where not finite."""
    finite = np.isfinite(values)
    series = pd.Series(np.where(finite, values, np.nan), dtype="float64")
    median = series.rolling(window, center=True, min_periods=1).median().to_numpy()
    return np.where(finite, median, np.nan)


def divergence_index(loss: np.ndarray, window: int) -> int | None:
    """First index whose loss is not finite or whose smoothed loss exceeds DIVERGENCE_FACTOR
    (config/sweep.py) times the lowest smoothed loss so far."""
    bad = np.flatnonzero(~np.isfinite(loss))
    end = int(bad[0]) if bad.size else len(loss)
    smoothed = smooth(loss[:end], window)
    over = np.flatnonzero(smoothed > DIVERGENCE_FACTOR * np.minimum.accumulate(smoothed))
    if over.size:
        return int(over[0])
    return end if bad.size else None


def diverged(loss: np.ndarray, window: int) -> bool:
    """The sweep's stop hook (``clrbench.train.lr_sweep``): whether the loss so far diverged, by
    the rule that reads it, so the sweep stops where the reading says it diverged."""
    return divergence_index(loss, window) is not None


def read_seed(frame: pd.DataFrame, window: int) -> dict[str, Any]:
    """One seed's reading: its minimum, valley, suggested bounds and where it diverged."""
    loss, lr = frame["loss"].to_numpy(), frame["lr"].to_numpy()
    diverged = divergence_index(loss, window)
    end = len(loss) if diverged is None else diverged
    seed = int(frame["seed"].iloc[0])
    if end < 2:
        raise ClrbenchError(f"seed {seed}: the loss was not finite from the first steps")
    smoothed = smooth(loss[:end], window)
    best = int(np.nanargmin(smoothed))
    valley = np.flatnonzero(smoothed <= VALLEY_FACTOR * smoothed[best])
    low, high = float(lr[valley[0]]), float(lr[valley[-1]])
    max_lr = math.sqrt(low * high)
    return {
        "seed": seed,
        "max_lr": max_lr,
        "base_lr": max_lr / BASE_DIVISOR,
        "valley_low_lr": low,
        "valley_high_lr": high,
        "lr_min_loss": float(lr[best]),
        "min_loss": float(smoothed[best]),
        "initial_loss": float(smoothed[0]),
        "divergence_step": None if diverged is None else int(frame["step"].iloc[diverged]),
        "divergence_lr": None if diverged is None else float(lr[diverged]),
        "steps_run": len(frame),
    }


def round_significant(value: float, digits: int = 2) -> float:
    return float(f"{value:.{digits}g}")


def _spread(values: list[float]) -> float | None:
    """Largest over smallest: the factor separating the seeds (None for fewer than two)."""
    return max(values) / min(values) if len(values) > 1 else None


def suggest(per_seed: list[dict[str, Any]], settings: SweepSettings) -> dict[str, Any]:
    """The bounds from all seeds' readings, their spread and any warnings (see ``RULE``)."""
    max_lr = round_significant(statistics.median(r["max_lr"] for r in per_seed))
    diverged = [r["divergence_lr"] for r in per_seed if r["divergence_lr"] is not None]
    spread = {
        "max_lr": _spread([r["max_lr"] for r in per_seed]),
        "lr_min_loss": _spread([r["lr_min_loss"] for r in per_seed]),
        "divergence_lr": _spread(diverged),
    }
    return {
        "base_lr": round_significant(max_lr / BASE_DIVISOR),
        "max_lr": max_lr,
        "valley_low_lr": statistics.median(r["valley_low_lr"] for r in per_seed),
        "valley_high_lr": statistics.median(r["valley_high_lr"] for r in per_seed),
        "valley_loss": VALLEY_FACTOR * statistics.median(r["min_loss"] for r in per_seed),
        "lr_min_loss": statistics.median(r["lr_min_loss"] for r in per_seed),
        "divergence_lr": statistics.median(diverged) if diverged else None,
        "spread": spread,
        "warnings": _warnings(per_seed, spread, settings),
    }


def _warnings(per_seed: list[dict], spread: dict, settings: SweepSettings) -> list[str]:
    warnings = []
    calm = [r["seed"] for r in per_seed if r["divergence_lr"] is None]
    if calm:
        warnings.append(
            f"seed(s) {', '.join(map(str, calm))} did not diverge by {settings.max_lr:g}: the "
            "valley may extend beyond the sweep; rerun with a larger --max-lr"
        )
    if settings.mode == "linear" and settings.max_lr > 100 * settings.min_lr:
        warnings.append(
            "a linear sweep over more than two decades spends most of its steps near the top, "
            "so the valley mostly shows how long the model has trained: prefer --mode exp"
        )
    if any(r["min_loss"] > 0.9 * r["initial_loss"] for r in per_seed):
        warnings.append("the loss barely fell: try more --steps or a wider rate range")
    if (spread["max_lr"] or 1.0) > SPREAD_WARNING:
        warnings.append(
            f"seeds disagree by {spread['max_lr']:.1f}x on max_lr: try more --steps or --seeds"
        )
    return warnings


@dataclass
class LrFindResult:
    """The tidy per-step data of every seed, each seed's reading and the suggested bounds."""

    settings: SweepSettings
    data: pd.DataFrame  # DATA_COLUMNS, one row per step per seed
    per_seed: list[dict[str, Any]]
    suggestion: dict[str, Any]
    wall_s: float
    jobs: int
    files: dict[str, Path] = field(default_factory=dict)  # what was written, by kind
    emitted: dict[str, Any] | None = None  # the emitted experiment (--emit-config), if any

    def summary(self) -> dict[str, Any]:
        """Plain JSON-able values: bounds, rule, per-seed readings, settings, divergence."""
        return {
            "base_lr": self.suggestion["base_lr"],
            "max_lr": self.suggestion["max_lr"],
            "rule": RULE.format(window=self.settings.window),
            **{key: self.suggestion[key] for key in SUGGESTION_DETAILS},
            "spread": self.suggestion["spread"],
            "warnings": self.suggestion["warnings"],
            "per_seed": self.per_seed,
            "sweep": self.settings.to_dict(),
            "seeds": [r["seed"] for r in self.per_seed],
            "jobs": self.jobs,
            "wall_s": self.wall_s,
        }


def tidy(sweeps: list[pd.DataFrame], window: int) -> pd.DataFrame:
    """All seeds' per-step rows (``sweeps``: one frame per seed) with their smoothed loss, in
    ``DATA_COLUMNS`` dtypes."""
    frames = [
        frame.assign(smoothed_loss=smooth(frame["loss"].to_numpy(), window)) for frame in sweeps
    ]
    return pd.concat(frames, ignore_index=True).astype(DATA_COLUMNS)[list(DATA_COLUMNS)]
