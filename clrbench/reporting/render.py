"""Comparison report of a results folder: seaborn figures, tables, Markdown and HTML.

Figures come from ``clrbench.reporting.figures`` (plain matplotlib Figures on the Agg canvas, one
colour per schedule everywhere), tables from ``clrbench.reporting.tables``; this module gathers the
statistics and the page's context, and ``clrbench.reporting.page`` writes the files (templates
``report.html.j2`` / ``report.md.j2``). Reads only the results folder; never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clrbench.analysis.margin import results_margin
from clrbench.analysis.record import RunAnalysis, analyse_run
from clrbench.analysis.workload import workload_target
from clrbench.reporting import lead, page, prose
from clrbench.reporting.figures import PER_BATCH, build_figures
from clrbench.reporting.page import FORMATS, check_options
from clrbench.reporting.tables import (
    aligned,
    comparison_table,
    incomplete_shapes,
    mark_incomplete,
    provenance_rows,
    runs_table,
    settings_table,
    speed_table,
    summary_table,
)
from clrbench.reporting.words import say
from clrbench.store import atomic
from clrbench.store.compact import read_figure_notes, write_compact
from clrbench.store.results import Results


def analyse(
    results: Results,
    target: float | None = None,
    baseline_schedule: str | None = None,
    margin_pp: float | None = None,
) -> RunAnalysis:
    """Every statistic of the report, at ``target`` (default: the workload's own target when
    it ran at its defaults, else the data-driven one), its comparison decided at the
    workload's margin (or ``margin_pp``)."""
    chosen, source = (
        (float(target), "set by --target") if target is not None else workload_target(results)
    )
    margin = results_margin(results, margin_pp)
    return analyse_run(results, chosen, source, baseline_schedule, margin)


def _context(results: Results, analysis: RunAnalysis, figures: list[dict]) -> dict[str, Any]:
    settings = results.experiment.get("experiment", {})
    name = settings.get("name", results.path.name)
    folder = str(results.path)
    target = analysis.target
    how = "the highest multiple of 0.5 pp that at least 80% of ok runs reach"
    source = analysis.target_source
    if source.startswith("data-driven"):
        source = f"default: {how}"
    elif source != "set by --target":
        source = f"default: {source}"
    runs = results.runs
    flags = incomplete_shapes(runs)

    def mark(table: dict[str, Any]) -> dict[str, Any]:
        return mark_incomplete(table, flags)

    return {
        "title": f"clrbench report: {name}",
        "subtitle": f"{len(results.schedules)} schedules, {runs['seed'].nunique()} seeds, "
        f"{len(runs)} runs ({int((runs['status'] == 'ok').sum())} ok) from {folder}",
        "conclusion": conclusion(analysis),
        "answer": answer(analysis),
        "target_text": f"{target * 100:g}%",
        "target_note": source,
        "baseline": analysis.baseline,
        "commands": [
            f"python -m clrbench run --config {folder}/experiment.toml --out {folder}",
            f"python -m clrbench report {folder}",
        ],
        "tables": {
            "summary": aligned(mark(summary_table(analysis.summary, analysis.resolution))),
            "comparison": aligned(
                mark(comparison_table(analysis.comparison, analysis.margin.source))
            ),
            "speed": aligned(mark(speed_table(analysis.speed, target))),
            "settings": aligned(mark(settings_table(runs, list(results.schedules)))),
            "runs": aligned(runs_table(analysis.final)),
        },
        "colors": page.hex_colors(page.palette(results.schedules)),
        "figures": figures,
        "provenance": provenance_rows(results),
        "experiment_toml": _experiment_text(results),
    }


def conclusion(analysis: RunAnalysis) -> str:
    """The report's answer in words, from its analysis record."""
    return prose.conclusion(
        analysis.summary, analysis.comparison, analysis.speed, analysis.resolution
    )


def answer(analysis: RunAnalysis) -> str:
    """The report's first sentence: each schedule's final test accuracy minus the baseline's,
    with its Welch 95% interval."""
    opening = say("lead", "opening", analysis.baseline, lead.margin_of(analysis.comparison))
    return lead.answer_sentence(analysis.comparison, opening)


def lead_figure(analysis: RunAnalysis, colors: dict[str, Any]) -> dict[str, Any]:
    """The report's first figure: the same differences and intervals."""
    baseline, margin = analysis.baseline, lead.margin_of(analysis.comparison)
    xlabel = say("figures", "lead_xlabel", baseline)
    figure = lead.differences_figure(analysis.comparison, colors, xlabel, margin=margin)
    caption = say("figures", "lead_caption", margin, analysis.margin.source)
    return lead.lead_spec(figure, say("figures", "lead_title", baseline), caption)


def _experiment_text(results: Results) -> str:
    folders = [results.path] + ([results.compact] if results.compact is not None else [])
    for folder in folders:
        try:
            return (folder / "experiment.toml").read_text().strip()
        except OSError:
            continue
    return ""


def render(
    results: Results,
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    target: float | None = None,
    baseline_schedule: str | None = None,
    templates: Path = page.TEMPLATES,
    margin_pp: float | None = None,
) -> dict[str, Path]:
    """Write report.html / report.md (+ figures/*.png) and summary.csv into ``out_dir``.

    Returns the files written by kind (``html``, ``md``, ``csv``). Writes only those names
    (and ``figures/<name>.png`` for Markdown) and the compact data the report comes from
    (``data/``, ``clrbench.store.compact``); nothing else in ``out_dir`` is touched.
    ``templates``: the folder of the jinja templates (clrbench's own by default);
    ``margin_pp``: ``--margin``, replacing the workload's own margin.
    """
    formats = check_options(formats, target)
    analysis = analyse(results, target, baseline_schedule, margin_pp)
    specs = build_figures(
        results,
        analysis.final,
        analysis.reach,
        analysis.target,
        analysis.resolution,
        kept_figures(results),
    )
    colors = page.palette(results.schedules)
    figures = page.encode_figures([lead_figure(analysis, colors), *specs])
    context = _context(results, analysis, figures)
    written = page.write_pages(out_dir, "report", context, figures, formats, templates)
    written["csv"] = atomic.write_text(
        Path(out_dir) / "summary.csv", analysis.summary.to_csv(index=False)
    )
    per_batch = {s["name"]: {"title": s["title"], "caption": s["caption"]} for s in figures}
    per_batch = {name: spec for name, spec in per_batch.items() if name in PER_BATCH}
    write_compact(results, out_dir, per_batch)  # what re-renders it without the results
    return written


def kept_figures(results: Results) -> dict[str, dict[str, Any]]:
    """Results read from compact data: the per-batch figures as they were rendered beside it
    (title and caption from compact.json, the PNG from the report's figures/)."""
    if results.compact is None or not results.batches.empty:
        return {}
    figures = results.compact.parent / "figures"
    kept = {}
    for name, spec in read_figure_notes(results.compact).items():
        try:
            kept[name] = dict(spec) | {"png": (figures / f"{name}.png").read_bytes()}
        except OSError:
            continue  # not rendered as Markdown: left out
    return kept
