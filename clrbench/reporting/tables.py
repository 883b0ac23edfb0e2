"""The report's tables as plain strings (header, rows), and how their cells are formatted.

Their notes are ``templates/words/notes.j2``'s (:func:`clrbench.reporting.words.say`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from clrbench.analysis import stats
from clrbench.config.optimizers import spec as optimizer_spec
from clrbench.data.load import dataset_counts
from clrbench.environment import package_version
from clrbench.errors import ClrbenchError
from clrbench.reporting import prose
from clrbench.reporting.words import say
from clrbench.schedules import make, shape_notes
from clrbench.store.results import RUN_COLUMNS, Results
from clrbench.text import never_or, number, pct, signed

TOOLS = ("clrbench", "pandas", "numpy", "scipy", "matplotlib", "seaborn", "jinja2")
INCOMPLETE = "†"  # after a schedule whose shape the run ends before completing


def num(value: float, fmt: str = ".1f") -> str:
    return number(value, fmt) if value is not None and np.isfinite(value) else "–"


def iterations(value: float) -> str:
    """Iterations to target: a count, 'never' (inf: most runs never reached it) or '–'."""
    return never_or(value, ",.0f")


def interval(low: float, high: float) -> str:
    return f"{pct(low)} – {pct(high)}" if np.isfinite(low) and np.isfinite(high) else "–"


def summary_table(summary: pd.DataFrame, resolution: int | None) -> dict[str, Any]:
    """Per-schedule summary, best first."""
    target = summary["target"].iloc[0] * 100
    headers = ["Schedule", "Seeds ok/total", "Final test acc. % (mean ± sd)", "95% CI of mean",
               "Best test acc. % (mean)", "Final train loss", f"Iterations to {target:g}% (median)",
               "Reached target", f"Seconds to {target:g}% (median)",
               "Training s (mean)"]  # fmt: skip
    rows = []
    for r in summary.itertuples():
        spread = f" ± {pct(r.final_test_accuracy_std)}" if r.ok > 1 else ""
        rows.append([
            str(r.schedule), f"{r.ok}/{r.runs}", pct(r.final_test_accuracy_mean) + spread,
            interval(r.final_test_accuracy_ci_low, r.final_test_accuracy_ci_high),
            pct(r.best_test_accuracy_mean), num(r.final_train_loss_mean, ".4f"),
            iterations(r.iterations_to_target_median), f"{r.n_reached}/{r.ok}",
            iterations(r.seconds_to_target_median).replace(",", ""), num(r.train_s_mean),
        ])  # fmt: skip
    note = say("notes", "summary", resolution)
    title = "Summary per schedule"
    return {"id": "summary", "title": title, "headers": headers, "rows": rows, "note": note}


def comparison_table(comparison: pd.DataFrame, margin_source: str = "") -> dict[str, Any]:
    """Each schedule against the baseline: Welch, Holm, the TOST at the margin, the outcome."""
    baseline = comparison["baseline"].iloc[0] if len(comparison) else "—"
    headers = ["Schedule", "Seeds (vs baseline)", "Difference pp", "95% CI pp (Welch)",
               "90% CI pp", "p (Welch)", "p (Holm)", "p equivalent (TOST, Holm)", "Hedges' g",
               "Outcome"]  # fmt: skip
    rows = [
        [str(r.schedule), f"{r.n} vs {r.n_baseline}", signed(r.difference * 100),
         pp_interval(r.ci_low, r.ci_high), pp_interval(r.ci90_low, r.ci90_high),
         prose.format_p(r.p_value), prose.format_p(r.p_holm),
         prose.format_p(r.p_equivalence_holm), num(r.hedges_g, ".2f"), r.verdict]
        for r in comparison.itertuples()
    ]  # fmt: skip
    title = f"Against the baseline: {baseline}"
    note = say(
        "notes",
        "comparison",
        baseline=baseline,
        tested=int(comparison["p_value"].notna().sum()),
        margin=prose.margin_text(comparison),
        source=margin_source,
        alpha=stats.ALPHA,
        min_seeds=stats.MIN_SEEDS,
    )
    return {"id": "comparison", "title": title, "headers": headers, "rows": rows, "note": note}


def pp_interval(low: float, high: float) -> str:
    """An interval of fractions as "+0.01 to +0.15" pp, or "–"."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "–"
    return f"{signed(low * 100)} to {signed(high * 100)}"


def speed_table(speed: pd.DataFrame, target: float) -> dict[str, Any]:
    """Each schedule's iterations to target against the baseline's (Mann-Whitney, Holm)."""
    baseline = speed["baseline"].iloc[0] if len(speed) else "—"
    headers = ["Schedule", "Reached (vs baseline)", "Median iterations", "Baseline median",
               "p (Mann-Whitney)", "p (Holm)", "Verdict"]  # fmt: skip
    rows = [
        [str(r.schedule), f"{r.reached}/{r.n} vs {r.reached_baseline}/{r.n_baseline}",
         iterations(r.median), iterations(r.median_baseline), prose.format_p(r.p_value),
         prose.format_p(r.p_holm), r.verdict]
        for r in speed.itertuples()
    ]  # fmt: skip
    note = say("notes", "speed", target, baseline, stats.MIN_SEEDS)
    title = f"Time to target against {baseline}"
    return {"id": "speed", "title": title, "headers": headers, "rows": rows, "note": note}


def incomplete_shapes(runs: pd.DataFrame) -> dict[str, str]:
    """``{schedule label: why}`` for each schedule whose shape its run ends before completing
    (a length or warm-up longer than the run, a cycle never completed), from the roles of its
    parameters (``clrbench.schedules.shape_notes``)."""
    flags = {}
    for label, group in runs.groupby("schedule", observed=True, sort=False):
        notes = _incomplete_notes(group.iloc[0], str(label))
        if notes:
            flags[str(label)] = "; ".join(notes)
    return flags


def _incomplete_notes(run: Any, label: str) -> list[str]:
    if '"keras:' in run.params or run.schedule_name.startswith("keras:"):
        return []  # Keras's own schedules declare no lengths, and the report stays TF-free
    train = run.train_size
    if pd.isna(train):
        held_out = 0 if pd.isna(run.validation_size) else int(run.validation_size)
        try:  # a plug-in's count needs its data (not where it is not installed)
            train = dataset_counts(run.dataset)[0] - held_out
        except ClrbenchError:
            return []
    steps_per_epoch = math.ceil(int(train) / int(run.batch_size))
    try:
        schedule = make(
            run.schedule_name,
            granularity=run.granularity,
            steps_per_epoch=steps_per_epoch,
            **json.loads(run.params),
        )
    except (ClrbenchError, KeyError):  # a plug-in not installed where the report is made
        return []
    run_steps = steps_per_epoch * int(run.epochs)
    return [n.text for n in shape_notes(schedule, run_steps, label) if n.incomplete]


def mark_incomplete(table: dict[str, Any], flags: dict[str, str]) -> dict[str, Any]:
    """``table`` with INCOMPLETE after each flagged schedule (first column) and a footnote after
    its note (the note, for a table without one)."""
    flagged = [row[0] for row in table["rows"] if row[0] in flags]
    if not flagged:
        return table
    rows = [[f"{r[0]} {INCOMPLETE}", *r[1:]] if r[0] in flags else r for r in table["rows"]]
    footnote = say("notes", "incomplete", INCOMPLETE, [flags[label] for label in flagged])
    note = f"{table['note']} {footnote}" if table["note"] else footnote
    return table | {"rows": rows, "note": note}


def status_text(status: str, diverged_step: Any, error: Any) -> str:
    """'ok', 'diverged at step N' or 'failed: <first line of the error>'."""
    if status == "diverged":
        return "diverged" + ("" if pd.isna(diverged_step) else f" at step {int(diverged_step)}")
    if status == "failed":
        first = str(error).strip().splitlines()[0] if isinstance(error, str) and error else ""
        return f"failed: {first}" if first else "failed"
    return status


def _decay_text(optimizer: str, value: Any) -> str:
    """The weight decay a run trained with: its own, else its optimizer's default ('–': the
    optimizer takes none, or is not one clrbench declares)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        try:
            value = optimizer_spec(optimizer).weight_decay
        except ClrbenchError:
            value = None
    return "–" if value is None else f"{float(value):g}"


def _param_text(value: Any) -> str:
    if isinstance(value, float):
        return number(value, "g")
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def settings_table(runs: pd.DataFrame, schedules: list[str]) -> dict[str, Any]:
    """What each schedule trained with: optimizer, weight decay, the optimizer's own warm-up
    and the schedule's shape with its rates (from the runs' records, first seed)."""
    headers = ["Schedule", "Optimizer", "Weight decay", "Optimizer warm-up (steps)", "Shape"]
    rows = []
    for label in schedules:
        run = runs[runs["schedule"] == label].iloc[0]
        params = json.loads(run["params"])
        shape = ", ".join(f"{k}={_param_text(v)}" for k, v in params.items())
        warmup = plain(run.get("optimizer_warmup_steps"))
        rows.append([
            label, str(run.get("optimizer") or "–"),
            _decay_text(str(run.get("optimizer")), run.get("weight_decay")),
            "–" if warmup is None else f"{int(float(warmup)):,}",
            f"{run['schedule_name']}({shape})",
        ])  # fmt: skip
    note = say("notes", "settings")
    title = "Settings per schedule"
    return {"id": "settings", "title": title, "headers": headers, "rows": rows, "note": note}


def runs_table(final: pd.DataFrame) -> dict[str, Any]:
    """Every run with its outcome."""
    headers = ["Run", "Schedule", "Seed", "Status", "Epochs", "Final test acc. %", "Wall s"]
    rows = [
        [str(r.run_id), str(r.schedule), str(r.seed),
         status_text(r.status, r.diverged_step, r.error), str(r.epochs_done),
         pct(r.final_test_accuracy), num(r.wall_s)]
        for r in final.itertuples()
    ]  # fmt: skip
    return {"id": "runs", "title": "Runs", "headers": headers, "rows": rows, "note": None}


def plain(value: Any) -> str | None:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def provenance_rows(results: Results) -> list[tuple[str, str]]:
    """(what, value) pairs: run configuration and provenance columns, then this report's tools."""
    rows = [("results folder", str(results.path))]
    extra = [c for c in results.runs.columns if c not in RUN_COLUMNS]
    for column in extra:
        values = [v for v in map(plain, results.runs[column]) if v is not None]
        distinct = list(dict.fromkeys(values))
        if not distinct:
            continue
        if len(distinct) == 1:
            text = distinct[0]
        elif column.endswith("_at") or "date" in column:  # ISO timestamps: the span
            text = f"{min(distinct)} to {max(distinct)}"
        else:
            text = "; ".join(distinct[:3]) + f" ({len(distinct)} distinct values)"
        rows.append((column.replace("_", " "), text))
    tools = ", ".join(f"{name} {package_version(name) or '?'}" for name in TOOLS)
    rows.append(("report made with", f"python {sys.version.split()[0]}, {tools}"))
    rows.append(("report generated", datetime.now(UTC).isoformat(timespec="seconds")))
    return rows


# --- rendering ---

# a number, a count (8,911; 5/5; 2 of 3), a ratio (1.73×), a value with its rank (89.03 (5)), a
# range (+0.1 to +0.3) or a pair (97.9 vs 97.8)
_NUMBER = r"[-+−–±<>\d\s./%,×∞()]*"
NUMERIC_CELL = re.compile(rf"^{_NUMBER}((to|vs|of){_NUMBER})?$")
EMPTY_CELLS = ("–", "n/a", "")


def aligned(table: dict[str, Any]) -> dict[str, Any]:
    """Mark the columns whose every filled cell is a number (right-aligned in both formats)."""
    columns = list(zip(*table["rows"], strict=True)) or [()] * len(table["headers"])
    filled = [[c for c in cells if c not in EMPTY_CELLS] for cells in columns]
    numeric = [bool(cells) and all(map(NUMERIC_CELL.match, cells)) for cells in filled]
    return table | {"numeric": numeric}


def md_cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")
