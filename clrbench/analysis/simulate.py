"""Simulation of the primary test and its sequential rule (:mod:`clrbench.analysis.protocol`)
with the variance components the committed references measured.

Each replicate draws, for F families at once, the (S × K) tables of the model
y_ij = δ_f + u_i + s_j + e_ij (seeds shared: one s_j for every study; fresh: one per study and
seed), applies the same estimate (:func:`protocol.standard_error`) and the same decision rule
as :func:`clrbench.analysis.decide.decide` (vectorised here; a test checks they agree), and
counts the outcomes. Seeded: the same call gives the same table.

The components (pp of final test accuracy) come from the three committed 3-study references
(``reports/study*/``; ``tests/test_simulate.py`` recomputes them from those files):
``between`` is the pooled sd over studies of a family's per-study mean difference to the tuned
constant (5 shared seeds), ``pair`` the sd of one seed's difference, √2 × the pooled seed sd of
one run in study 0's final runs (seeds taken as independent between schedules), and the tuning
sd σ_u = √(between² − pair²/5). How much of ``pair`` is a seed effect shared by every study is
not identifiable from 3 studies on shared seeds; the tables take half (``SEED_SHARE``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from clrbench.analysis.protocol import FIRST_LOOK, look_level, standard_error
from clrbench.analysis.stats import ALPHA

UNDECIDED, BETTER, WORSE, EQUIVALENT = 0, 1, 2, 3
SEED_SHARE = 0.5
SEEDS = 5


@dataclass(frozen=True)
class Components:
    """A workload's variance components and observed effects (pp), and its margin (pp)."""

    workload: str
    between: float  # sd over studies of a family's mean difference (K = 5 shared seeds)
    pair: float  # sd of one seed's paired difference within a study
    margin: float
    effects: dict[str, float]  # each family's mean difference over the 3 studies

    @property
    def tuning(self) -> float:
        return math.sqrt(max(self.between**2 - self.pair**2 / SEEDS, 0.0))


REFERENCES = (
    Components("mnist-mlp", 0.035, 0.075, 0.1,
               {"step-decay": 0.025, "clr-iter": 0.073, "clr-epoch": 0.050, "sine-exp": -0.001}),
    Components("fashion-mnist-mlp", 0.176, 0.175, 0.25,
               {"step-decay": 0.463, "clr-iter": 0.611, "clr-epoch": 0.594, "sine-exp": 0.256}),
    Components("mnist1d-mlp", 0.936, 1.776, 1.0,
               {"step-decay": -0.633, "clr-iter": -0.287, "clr-epoch": -0.180, "sine-exp": -0.113}),
)  # fmt: skip


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm's adjustment along the last axis (no NaN), as :func:`stats.holm` row by row."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def outcomes(
    difference: np.ndarray, se: np.ndarray, df: np.ndarray, margin: float, level: float
) -> np.ndarray:
    """The outcome code of each comparison, ``(replicates, families)``, Holm over families."""
    p_diff = 2 * sps.t.sf(np.abs(difference) / se, df)
    p_low = sps.t.sf((difference + margin) / se, df)
    p_high = sps.t.cdf((difference - margin) / se, df)
    p_diff, p_equiv = holm_rows(p_diff), holm_rows(np.maximum(p_low, p_high))
    codes = np.where(p_equiv < level, EQUIVALENT, UNDECIDED)
    return np.where(p_diff < level, np.where(difference > 0, BETTER, WORSE), codes)


def draw(
    c: Components,
    effects: Sequence[float],
    studies: int,
    fresh_seeds: bool,
    replicates: int,
    rng: np.random.Generator,
    seed_share: float = SEED_SHARE,
) -> np.ndarray:
    """Tables ``(replicates, families, studies, SEEDS)`` of paired differences (pp)."""
    shape = (replicates, len(effects), studies, SEEDS)
    seed_shape = shape if fresh_seeds else (replicates, len(effects), 1, SEEDS)
    tuning = rng.normal(0, c.tuning, (*shape[:3], 1))
    seed = rng.normal(0, c.pair * math.sqrt(seed_share), seed_shape)
    rest = rng.normal(0, c.pair * math.sqrt(1 - seed_share), shape)
    return np.asarray(effects)[None, :, None, None] + tuning + seed + rest


def fixed(
    c: Components,
    effects: Sequence[float],
    studies: int,
    fresh_seeds: bool,
    replicates: int,
    seed: int,
    seed_share: float = SEED_SHARE,
) -> np.ndarray:
    """Outcome codes of the primary test after ``studies`` studies, at level α."""
    rng = np.random.default_rng(seed)
    y = draw(c, effects, studies, fresh_seeds, replicates, rng, seed_share)
    se, df = standard_error(y, fresh_seeds)
    return outcomes(y.mean(axis=(-2, -1)), se, df, c.margin, ALPHA)


def sequential(
    c: Components,
    effects: Sequence[float],
    max_studies: int,
    fresh_seeds: bool,
    replicates: int,
    seed: int,
    seed_share: float = SEED_SHARE,
) -> tuple[np.ndarray, np.ndarray]:
    """Outcome codes under the sequential rule (each family's first decided look) and the
    studies each replicate ran."""
    rng = np.random.default_rng(seed)
    y = draw(c, effects, max_studies, fresh_seeds, replicates, rng, seed_share)
    final = np.full(y.shape[:2], UNDECIDED)
    ran = np.full(replicates, max_studies)
    running = np.ones(replicates, dtype=bool)
    for studies in range(min(FIRST_LOOK, max_studies), max_studies + 1):
        part = y[:, :, :studies]
        se, df = standard_error(part, fresh_seeds)
        level = look_level(studies, max_studies)
        now = outcomes(part.mean(axis=(-2, -1)), se, df, c.margin, level)
        final = np.where(running[:, None] & (final == UNDECIDED), now, final)
        done = running & (final != UNDECIDED).all(axis=1)
        ran[done] = studies
        running &= ~done
    return final, ran


REPLICATES = 4000
STUDY_COUNTS = (3, 5, 8)
MAX_STUDIES = 8


@dataclass(frozen=True)
class Row:
    """One design's simulated rates: ``false_decision`` (any family called better or worse
    when every δ = 0), ``false_equivalence`` (any called equivalent when every δ = +margin),
    ``correct`` per family at the observed effects (its true sign's better/worse, or
    equivalent when |δ| < margin) and the mean studies run."""

    workload: str
    design: str
    studies: int
    sequential: bool
    false_decision: float
    false_equivalence: float
    correct: dict[str, float]
    wrong: float  # any family decided wrongly at the observed effects
    mean_studies: float


def _correct(codes: np.ndarray, effects: Sequence[float], margin: float) -> list[float]:
    rates = []
    for i, effect in enumerate(effects):
        right = codes[:, i] == (BETTER if effect > 0 else WORSE)
        right |= (codes[:, i] == EQUIVALENT) & (abs(effect) < margin)
        rates.append(float(right.mean()))
    return rates


def _wrong(codes: np.ndarray, effects: Sequence[float], margin: float) -> float:
    effects_ = np.asarray(effects)[None, :]
    wrong = ((codes == BETTER) & (effects_ <= 0)) | ((codes == WORSE) & (effects_ >= 0))
    wrong |= (codes == EQUIVALENT) & (np.abs(effects_) >= margin)
    return float(wrong.any(axis=1).mean())


def simulate_row(
    c: Components, fresh_seeds: bool, studies: int, sequential_rule: bool,
    replicates: int = REPLICATES,
) -> Row:  # fmt: skip
    """The rates of one design (seeded by its place in the table)."""
    families = list(c.effects)
    effects = list(c.effects.values())
    seed = [REFERENCES.index(c), int(fresh_seeds), studies, int(sequential_rule)]
    base = int(np.random.default_rng(seed).integers(2**31))
    if sequential_rule:
        null, _ = sequential(c, [0.0] * 4, studies, fresh_seeds, replicates, base)
        edge, _ = sequential(c, [c.margin] * 4, studies, fresh_seeds, replicates, base + 1)
        seen, ran = sequential(c, effects, studies, fresh_seeds, replicates, base + 2)
        mean_studies = float(ran.mean())
    else:
        null = fixed(c, [0.0] * 4, studies, fresh_seeds, replicates, base)
        edge = fixed(c, [c.margin] * 4, studies, fresh_seeds, replicates, base + 1)
        seen = fixed(c, effects, studies, fresh_seeds, replicates, base + 2)
        mean_studies = float(studies)
    return Row(
        c.workload, "fresh" if fresh_seeds else "shared", studies, sequential_rule,
        float(np.isin(null, (BETTER, WORSE)).any(axis=1).mean()),
        float((edge == EQUIVALENT).any(axis=1).mean()),
        dict(zip(families, _correct(seen, effects, c.margin), strict=True)),
        _wrong(seen, effects, c.margin), mean_studies,
    )  # fmt: skip


def simulate_all(replicates: int = REPLICATES) -> list[Row]:
    """Every row of the docs' table: each workload, seeds shared or fresh, 3 / 5 / 8 studies
    and the sequential rule up to ``MAX_STUDIES``."""
    rows = []
    for c in REFERENCES:
        for fresh in (False, True):
            for studies in STUDY_COUNTS:
                rows.append(simulate_row(c, fresh, studies, False, replicates))
            rows.append(simulate_row(c, fresh, MAX_STUDIES, True, replicates))
    return rows


def markdown_tables(rows: Sequence[Row]) -> str:
    """The tables of docs/concepts/protocol.md, one per workload."""
    lines: list[str] = []
    for c in REFERENCES:
        mine = [r for r in rows if r.workload == c.workload]
        if not mine:
            continue
        effects = [f"{name} {value:+.3f} pp" for name, value in c.effects.items()]
        lines += [
            f"**{c.workload}** (margin ±{c.margin:g} pp; sd over studies {c.between:g} pp, "
            f"of one seed's difference {c.pair:g} pp, tuning {c.tuning:.3f} pp)",
            "",
            "| Seeds | Studies | False better/worse (δ = 0) | False equivalent (δ = +Δ) | "
            + " | ".join(f"Correct: {e}" for e in effects)
            + " | Any wrong | Mean studies |",
            "|---|---|---:|---:|" + "---:|" * len(effects) + "---:|---:|",
        ]
        for r in mine:
            studies = f"until decided, ≤ {r.studies}" if r.sequential else str(r.studies)
            cells = [r.design, studies, f"{r.false_decision:.3f}", f"{r.false_equivalence:.3f}"]
            cells += [f"{rate:.2f}" for rate in r.correct.values()]
            cells += [f"{r.wrong:.3f}", f"{r.mean_studies:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
