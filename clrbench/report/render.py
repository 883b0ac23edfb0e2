"""Comparison report of a results folder: seaborn figures, tables, Markdown and HTML.

Figures come from ``clrbench.report.figures`` (plain matplotlib Figures on the Agg canvas, one
colour per schedule everywhere); this module builds the tables and renders the jinja2
templates. Reads only the results folder; never imports TensorFlow.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from clrbench.analysis import stats
from clrbench.errors import ClrbenchError
from clrbench.report import prose
from clrbench.report.figures import FIGURE_DPI, build_figures, palette, png_bytes
from clrbench.report.tables import (
    aligned,
    comparison_table,
    incomplete_shapes,
    mark_incomplete,
    md_cell,
    provenance_rows,
    runs_table,
    speed_table,
    summary_table,
)
from clrbench.store import atomic
from clrbench.store.results import Results

FORMATS = ("html", "md")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("clrbench", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = md_cell
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
    flags = incomplete_shapes(runs)

    def mark(table: dict[str, Any]) -> dict[str, Any]:
        return mark_incomplete(table, flags)

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
            "summary": aligned(mark(summary_table(analysis["summary"], analysis["resolution"]))),
            "comparison": aligned(mark(comparison_table(analysis["comparison"]))),
            "speed": aligned(mark(speed_table(analysis["speed"], target))),
            "runs": aligned(runs_table(analysis["final"])),
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
