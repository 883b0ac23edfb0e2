"""Comparison report of a results folder: seaborn figures, tables, Markdown and HTML.

Figures come from ``clrbench.report.figures`` (plain matplotlib Figures on the Agg canvas, one
colour per schedule everywhere); this module builds the tables and renders the jinja2
templates. Reads only the results folder; never imports TensorFlow.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from clrbench.analysis import stats
from clrbench.environment import package_version
from clrbench.errors import ClrbenchError
from clrbench.report import prose
from clrbench.report.figures import FIGURE_DPI, build_figures, palette, png_bytes
from clrbench.store import atomic
from clrbench.store.results import RUN_COLUMNS, Results

FORMATS = ("html", "md")
TOOLS = ("clrbench", "pandas", "numpy", "scipy", "matplotlib", "seaborn", "jinja2")


def _pct(value: float, digits: int = 2) -> str:
    return f"{value * 100:.{digits}f}" if np.isfinite(value) else "–"


def _num(value: float, fmt: str = ".1f") -> str:
    return format(value, fmt) if value is not None and np.isfinite(value) else "–"


def _iterations(value: float) -> str:
    """Iterations to target: a count, 'never' (inf: most runs never reached it) or '–'."""
    return "never" if value == np.inf else _num(value, ",.0f")


def _interval(low: float, high: float) -> str:
    return f"{_pct(low)} – {_pct(high)}" if np.isfinite(low) and np.isfinite(high) else "–"


def summary_table(summary: pd.DataFrame, resolution: int | None) -> dict[str, Any]:
    """Per-schedule summary, best first."""
    target = summary["target"].iloc[0] * 100
    headers = ["Schedule", "Seeds ok/total", "Final test acc. % (mean ± sd)", "95% CI of mean",
               "Best test acc. % (mean)", "Final train loss", f"Iterations to {target:g}% (median)",
               "Reached target", f"Seconds to {target:g}% (median)",
               "Training s (mean)"]  # fmt: skip
    rows = []
    for r in summary.itertuples():
        spread = f" ± {_pct(r.final_test_accuracy_std)}" if r.ok > 1 else ""
        rows.append([
            str(r.schedule), f"{r.ok}/{r.runs}", _pct(r.final_test_accuracy_mean) + spread,
            _interval(r.final_test_accuracy_ci_low, r.final_test_accuracy_ci_high),
            _pct(r.best_test_accuracy_mean), _num(r.final_train_loss_mean, ".4f"),
            _iterations(r.iterations_to_target_median), f"{r.n_reached}/{r.ok}",
            _iterations(r.seconds_to_target_median).replace(",", ""), _num(r.train_s_mean),
        ])  # fmt: skip
    step = f" = {resolution:,} iterations" if resolution else ""
    note = (
        "Over the ok runs of each schedule, best first. CI: two-sided 95% t-interval of the mean "
        "final test accuracy. Best: each run's best epoch, averaged over seeds. Time to target: "
        "median over all ok runs, a run that never reached the target counting as never "
        "(iterations = last step of the first epoch at or above it + 1; test accuracy is "
        f"measured once per epoch, so iterations are resolved to one epoch{step}; seconds "
        "count training since the run's start of fitting). Training s: the run's steps and "
        "per-epoch test evaluation, without the one-off start-up (imports, data, model build) "
        "that the runs' wall time includes."
    )
    title = "Summary per schedule"
    return {"id": "summary", "title": title, "headers": headers, "rows": rows, "note": note}


def comparison_table(comparison: pd.DataFrame) -> dict[str, Any]:
    """Each schedule against the baseline (Welch, Holm, Hedges' g)."""
    baseline = comparison["baseline"].iloc[0] if len(comparison) else "—"
    headers = ["Schedule", "Seeds (vs baseline)", "Difference pp", "95% CI pp (Welch)",
               "p (Welch)", "p (Holm)", "Hedges' g", "Verdict"]  # fmt: skip
    rows = [
        [str(r.schedule), f"{r.n} vs {r.n_baseline}", f"{r.difference * 100:+.2f}",
         f"{r.ci_low * 100:+.2f} to {r.ci_high * 100:+.2f}" if np.isfinite(r.ci_low) else "–",
         prose.format_p(r.p_value), prose.format_p(r.p_holm), _num(r.hedges_g, ".2f"),
         r.verdict]
        for r in comparison.itertuples()
    ]  # fmt: skip
    title = f"Against the baseline: {baseline}"
    tested = int(comparison["p_value"].notna().sum())
    tests = (
        f"p (Holm): adjusted by Holm's step-down method over the {tested} tested comparisons"
        if tested
        else "no comparison could be tested"
    )
    note = (
        f"Final test accuracy of each schedule minus {baseline}'s (ok runs). CI and p from "
        f"Welch's t-test; {tests}; significant when below {stats.ALPHA}. Hedges' g: "
        f"standardised difference. Fewer than {stats.MIN_SEEDS} ok seeds on either side: "
        "not tested."
    )
    return {"id": "comparison", "title": title, "headers": headers, "rows": rows, "note": note}


def speed_table(speed: pd.DataFrame, target: float) -> dict[str, Any]:
    """Each schedule's iterations to target against the baseline's (Mann-Whitney, Holm)."""
    baseline = speed["baseline"].iloc[0] if len(speed) else "—"
    headers = ["Schedule", "Reached (vs baseline)", "Median iterations", "Baseline median",
               "p (Mann-Whitney)", "p (Holm)", "Verdict"]  # fmt: skip
    rows = [
        [str(r.schedule), f"{r.reached}/{r.n} vs {r.reached_baseline}/{r.n_baseline}",
         _iterations(r.median), _iterations(r.median_baseline), prose.format_p(r.p_value),
         prose.format_p(r.p_holm), r.verdict]
        for r in speed.itertuples()
    ]  # fmt: skip
    note = (
        f"Iterations until the test accuracy first reaches {target * 100:g}% (ok runs; a run "
        "that never reaches it is slowest). Two-sided Mann-Whitney U rank test against "
        f"{baseline}, Holm-adjusted over the tested comparisons; fewer than {stats.MIN_SEEDS} "
        "ok seeds on either side: not tested."
    )
    title = f"Time to target against {baseline}"
    return {"id": "speed", "title": title, "headers": headers, "rows": rows, "note": note}


def status_text(status: str, diverged_step: Any, error: Any) -> str:
    """'ok', 'diverged at step N' or 'failed: <first line of the error>'."""
    if status == "diverged":
        return "diverged" + ("" if pd.isna(diverged_step) else f" at step {int(diverged_step)}")
    if status == "failed":
        first = str(error).strip().splitlines()[0] if isinstance(error, str) and error else ""
        return f"failed: {first}" if first else "failed"
    return status


def runs_table(final: pd.DataFrame) -> dict[str, Any]:
    """Every run with its outcome."""
    headers = ["Run", "Schedule", "Seed", "Status", "Epochs", "Final test acc. %", "Wall s"]
    rows = [
        [str(r.run_id), str(r.schedule), str(r.seed),
         status_text(r.status, r.diverged_step, r.error), str(r.epochs_done),
         _pct(r.final_test_accuracy), _num(r.wall_s)]
        for r in final.itertuples()
    ]  # fmt: skip
    return {"id": "runs", "title": "Runs", "headers": headers, "rows": rows, "note": None}


def _plain(value: Any) -> str | None:
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
        values = [v for v in map(_plain, results.runs[column]) if v is not None]
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

_NUMERIC_CELL = re.compile(r"^[-+−–±<>\d\s./%]*((to|vs)[-+−–±<>\d\s./%]*)?$")
_EMPTY_CELLS = ("–", "n/a", "")


def _aligned(table: dict[str, Any]) -> dict[str, Any]:
    """Mark the columns whose every filled cell is a number (right-aligned in both formats)."""
    columns = list(zip(*table["rows"], strict=True)) or [()] * len(table["headers"])
    filled = [[c for c in cells if c not in _EMPTY_CELLS] for cells in columns]
    numeric = [bool(cells) and all(map(_NUMERIC_CELL.match, cells)) for cells in filled]
    return table | {"numeric": numeric}


def _md_cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("clrbench", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _md_cell
    return env


def check_options(formats: Sequence[str], target: float | None) -> tuple[str, ...]:
    """Validate the output formats and target (ClrbenchError with one line)."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        got = ",".join(unknown) if unknown else "nothing"
        raise ClrbenchError(f"--format must be one or more of {','.join(FORMATS)}, got {got}")
    if target is not None and not (0 < target <= 1 and math.isfinite(target)):
        raise ClrbenchError(f"--target is a test accuracy in (0, 1], e.g. 0.98; got {target}")
    return formats


def analyse(
    results: Results, target: float | None = None, baseline_schedule: str | None = None
) -> dict[str, Any]:
    """Every statistic of the report: final metrics, summary, comparison, target, conclusion."""
    chosen = stats.default_target(results) if target is None else float(target)
    final = stats.final_metrics(results)
    summary = stats.summarize(results, chosen)
    comparison = stats.compare(results, baseline_schedule)
    speed = stats.compare_speed(results, chosen, baseline_schedule)
    resolution = stats.evaluation_interval(results)
    return {
        "target": chosen,
        "target_is_default": target is None,
        "final": final,
        "summary": summary,
        "comparison": comparison,
        "reach": stats.steps_to_target(results, chosen),
        "speed": speed,
        "resolution": resolution,
        "conclusion": prose.conclusion(summary, comparison, speed, resolution),
        "baseline": stats.resolve_baseline(results.schedules, baseline_schedule),
    }


def _figure_entries(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each figure rendered once to PNG: bytes for the files, base64 for the HTML."""
    entries = []
    for spec in figures:
        png = png_bytes(spec["figure"])
        width, height = spec["figure"].get_size_inches() * FIGURE_DPI
        entries.append(
            {k: v for k, v in spec.items() if k != "figure"}
            | {"png": png, "data": base64.b64encode(png).decode("ascii")}
            | {"file": f"figures/{spec['name']}.png", "width": round(width)}
            | {"height": round(height)}
        )
    return entries


def _context(results: Results, analysis: dict[str, Any], figures: list[dict]) -> dict[str, Any]:
    settings = results.experiment.get("experiment", {})
    name = settings.get("name", results.path.name)
    folder = str(results.path)
    target = analysis["target"]
    how = "the highest multiple of 0.5 pp that at least 80% of ok runs reach"
    colors = {s: _hex(c) for s, c in palette(results.schedules).items()}
    runs = results.runs
    return {
        "title": f"clrbench report: {name}",
        "subtitle": f"{len(results.schedules)} schedules, {runs['seed'].nunique()} seeds, "
        f"{len(runs)} runs ({int((runs['status'] == 'ok').sum())} ok) from {folder}",
        "conclusion": analysis["conclusion"],
        "target_text": f"{target * 100:g}%",
        "target_note": f"default: {how}" if analysis["target_is_default"] else "set by --target",
        "baseline": analysis["baseline"],
        "commands": [
            f"python -m clrbench run --config {folder}/experiment.toml --out {folder}",
            f"python -m clrbench report {folder}",
        ],
        "tables": {
            "summary": _aligned(summary_table(analysis["summary"], analysis["resolution"])),
            "comparison": _aligned(comparison_table(analysis["comparison"])),
            "speed": _aligned(speed_table(analysis["speed"], target)),
            "runs": _aligned(runs_table(analysis["final"])),
        },
        "colors": colors,
        "figures": figures,
        "provenance": provenance_rows(results),
        "experiment_toml": _experiment_text(results),
    }


def _hex(color: Sequence[float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in color[:3])


def _experiment_text(results: Results) -> str:
    path = results.path / "experiment.toml"
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _output_folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ClrbenchError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def render(
    results: Results,
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    target: float | None = None,
    baseline_schedule: str | None = None,
) -> dict[str, Path]:
    """Write report.html / report.md (+ figures/*.png) and summary.csv into ``out_dir``.

    Returns the files written by kind (``html``, ``md``, ``csv``). Writes only those names
    (and ``figures/<name>.png`` for Markdown); nothing else in ``out_dir`` is touched.
    """
    formats = check_options(formats, target)
    analysis = analyse(results, target, baseline_schedule)
    specs = build_figures(
        results, analysis["final"], analysis["reach"], analysis["target"], analysis["resolution"]
    )
    figures = _figure_entries(specs)
    context = _context(results, analysis, figures)
    out = _output_folder(out_dir)
    env = _environment()
    written: dict[str, Path] = {}
    for kind in formats:
        if kind == "md":
            (out / "figures").mkdir(exist_ok=True)
            for figure in figures:
                atomic.write_bytes(out / figure["file"], figure["png"])
        written[kind] = out / f"report.{kind}"
        atomic.write_text(written[kind], env.get_template(f"report.{kind}.j2").render(context))
    written["csv"] = out / "summary.csv"
    atomic.write_text(written["csv"], analysis["summary"].to_csv(index=False))
    return written
