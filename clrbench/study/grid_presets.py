"""The grid of issue 36 as study families: (optimizer, schedule), every family tuned alike.

Rows (schedules) × columns (optimizers):

- ``sgd-momentum`` (the study's own optimizer): constant, step-decay, clr-iter, clr-epoch,
  one-cycle, cosine (warm-up + cosine), linear-decay, wsd, cyclic-cosine and sine-exp, under
  the labels and spaces of :func:`clrbench.study.presets.all_families`;
- ``adamw``: the same nine schedules without sine-exp, labelled ``adamw-<schedule>``, their
  rates' ranges those of SGD times :data:`ADAMW_RATE_FACTOR` and a ``weight_decay`` knob over
  AdamW's declared range (``clrbench.config.optimizers``: AlgoPerf's [5e-3, 1]);
- schedule-free SGD (``sf-sgd``) and AdamW (``sf-adamw``): a constant rate (the only schedule
  they take), their own warm-up (``optimizer_warmup_steps``, 1-10% of the run) and their weight
  decay. Rates: the ``schedulefree`` README advises 10-50x SGD's rate for SGD and 1-10x AdamW's
  for AdamW, so their ranges are the constants' times :data:`SCHEDULE_FREE_FACTOR`.

Why those factors (``clrbench.config.optimizers.PRESET_RATES``, mnist1d-mlp, validation): AdamW's
best constant was 0.01 and its warm-up cosine peak 3e-3; schedule-free AdamW's 0.05 and
schedule-free SGD's 3 (10 diverged). SGD's constant range 0.003-1 times 0.03 is 9e-5-0.03 and
times 10 (schedule-free SGD) 0.03-10; AdamW's times 10 (schedule-free AdamW) 9e-4-0.3: each
holds the checked best with room on both sides, as SGD's ranges run from too low to diverging.

Each family's baseline is the tuned constant of its optimizer (``constant`` / ``adamw-constant``);
schedule-free families have no schedule and are compared with the tuned constant of their base
optimizer (:data:`BASE_OPTIMIZER`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from clrbench.config.optimizers import DECAY_ROLE, weight_decay_range
from clrbench.schedules import roles
from clrbench.study.config import OPTIMIZER_WARMUP

ADAMW_RATE_FACTOR = 0.03
SCHEDULE_FREE_FACTOR = 10.0

SGD_SCHEDULES = (
    "constant",
    "step-decay",
    "clr-iter",
    "clr-epoch",
    "one-cycle",
    "cosine",
    "linear-decay",
    "wsd",
    "cyclic-cosine",
)
SCHEDULE_FREE = {"sf-sgd": "schedulefree-sgd", "sf-adamw": "schedulefree-adamw"}
# a schedule-free optimizer's baseline: the tuned constant of the optimizer it makes schedule-free
BASE_OPTIMIZER = {"schedulefree-sgd": "sgd-momentum", "schedulefree-adamw": "adamw"}
# the optimizers' label prefixes in the grid (sgd-momentum is the study's, unprefixed)
PREFIX = {"adamw": "adamw-", "nadamw": "nadamw-"}

GRID = (
    *SGD_SCHEDULES,
    "sine-exp",
    *(f"adamw-{s}" for s in SGD_SCHEDULES),
    *SCHEDULE_FREE,
)
# The families the issue joins to the committed sgd-momentum reference studies (mnist-mlp,
# fashion-mnist-mlp), beside their own constant, step-decay, clr-iter, clr-epoch and sine-exp.
JOIN = (
    "adamw-constant",
    "adamw-step-decay",
    "adamw-clr-iter",
    "adamw-cosine",
    "adamw-linear-decay",
    "adamw-wsd",
    "sf-adamw",
    "cosine",
    "linear-decay",
    "wsd",
    "one-cycle",
    "sf-sgd",
)


def _scaled(space: dict[str, Any], roles: dict[str, str], factor: float) -> dict[str, Any]:
    """``space`` with the ranges of its rate knobs (declared role ``rate``, not a fraction of
    another knob) multiplied by ``factor``."""
    scaled = copy.deepcopy(space)
    for name, knob in scaled.items():
        if roles.get(name) != "rate" or not isinstance(knob, dict) or "times" in knob:
            continue
        for kind in ("log", "uniform"):
            if kind in knob:
                knob[kind] = [float(f"{v * factor:.4g}") for v in knob[kind]]
    return scaled


def _decay(optimizer: str) -> dict[str, Any]:
    bounds = weight_decay_range(optimizer)
    return {} if bounds is None else {DECAY_ROLE: {"log": list(bounds)}}


def grid_families(sgd: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The AdamW and schedule-free families of the grid from the SGD families ``sgd`` (the
    ``[[family]]`` tables of :func:`clrbench.study.presets.all_families`)."""
    by_label = {f["label"]: f for f in sgd}
    families = []
    for schedule in SGD_SCHEDULES:
        base = by_label[schedule]
        space = _scaled(base["space"], roles(base["name"]), ADAMW_RATE_FACTOR)
        families.append(
            base | {"label": f"adamw-{schedule}", "optimizer": "adamw"}
            | {"space": space | _decay("adamw")}
        )  # fmt: skip
    constant = by_label["constant"]
    for label, optimizer in SCHEDULE_FREE.items():
        factor = SCHEDULE_FREE_FACTOR * (ADAMW_RATE_FACTOR if "adamw" in optimizer else 1.0)
        space = _scaled(constant["space"], roles("constant"), factor)
        space |= {OPTIMIZER_WARMUP: {"uniform": [0.01, 0.1], "unit": "run"}} | _decay(optimizer)
        families.append(constant | {"label": label, "optimizer": optimizer, "space": space})
    return families


def planned_runs(config: Any, new: Sequence[str] | None = None) -> dict[str, int]:
    """The runs a study plans per phase over all its studies (``config``: a StudyConfig;
    ``new``: count only these families, as a join into an existing study trains only them):
    trials (budget per family), confirmation (confirm_top x confirm_seeds), sensitivity
    (octaves x sensitivity_seeds), final (seeds; the zero-budget arm: 2 schedules x seeds, in
    study 0), and the most re-checks the sweep can ask for (confirm_seeds per family)."""
    families = len(config.families) if new is None else len(new)
    per_family = {
        "trials": config.budget,
        "confirm": config.confirm_top * config.confirm_seeds,
        "sensitivity": len(config.octaves) * config.sensitivity_seeds,
        "final": config.seeds,
    }
    runs = {phase: families * n * config.studies for phase, n in per_family.items()}
    if config.zero_budget and new is None:
        runs["final"] += 2 * config.seeds
    runs["total"] = sum(runs.values())
    runs["recheck_at_most"] = families * config.confirm_seeds * config.studies
    return runs
