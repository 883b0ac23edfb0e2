"""The report of a study folder (HTML + Markdown): reads only the folder, never TensorFlow.

Sections: the answer (generated), the protocol and its split, the winners, tuning effort (best
vs budget), sensitivity, the final comparison on test, the zero-budget arm, every trial, and
provenance. Tables and figures of the final runs are the run report's
(``clrbench.reporting.tables``, ``clrbench.reporting.figures``); ``clrbench.reporting.page``
writes the files (``study.*.j2``).
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from clrbench.analysis import stats
from clrbench.analysis.margin import workload_margin
from clrbench.errors import ResultsError, ResultsWarning
from clrbench.reporting import figures as run_figures
from clrbench.reporting import page
from clrbench.reporting import tables as report_tables
from clrbench.reporting.figures import figure_spec
from clrbench.reporting.render import conclusion as run_conclusion
from clrbench.reporting.words import say
from clrbench.store.results import Results, load_results
from clrbench.study import compact as study_compact
from clrbench.study import figures as study_figures
from clrbench.study import grid_report
from clrbench.study import lead as study_lead
from clrbench.study import prose as study_prose
from clrbench.study.analysis import (
    best_vs_budget,
    budget_over_studies,
    final_comparison,
    flatness,
    sensitivity_curve,
    trial_scores,
)
from clrbench.study.choice_tables import (
    across_table,
    confirmation_table,
    per_study_table,
    recheck_table,
)
from clrbench.study.config import ZERO_BUDGET_LABELS, StudyConfig
from clrbench.study.grid import grid_analysis
from clrbench.study.records import DrawAnalysis, StudyAnalysis
from clrbench.study.repeats import across_studies, per_study, sequential_across
from clrbench.study.select import choose
from clrbench.study.state import DrawState, StudyState, read_state
from clrbench.study.summary import write_summary
from clrbench.study.tables import (
    budget_over_studies_table,
    budget_table,
    protocol_rows,
    sensitivity_table,
    trials_table,
    winners_table,
)
from clrbench.text import json_number, plural


def _load(folder: Path) -> Results | None:
    """A phase's results (trained, or a report's compact data), or None when the phase has no
    complete run yet."""
    if not study_compact.holds_phase(folder):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResultsWarning)  # the report lists what is missing
            return load_results(folder)
    except ResultsError:
        return None


def load_config(study_dir: Path, state: StudyState | None = None) -> StudyConfig:
    """STUDY/study.toml; for a format-1 state (before confirmed winners) without confirmation."""
    path = study_dir / "study.toml"
    try:
        config = StudyConfig.from_dict(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read the study configuration ({exc})") from None
    if state is not None and state.legacy_format == 1:
        return config.with_changes(confirm_top=0, studies=1)
    return config


def _finished(folder: Path) -> pd.DataFrame | None:
    results = _load(folder)
    return None if results is None else stats.final_metrics(results)


def read_draw(study_dir: Path, record: DrawState, chance: float) -> dict[str, Any] | None:
    """One study's phases from its folder (``study_analysis``'s draw parts) and the winners
    its protocol recorded; None before its first trial completed."""
    folder = study_dir / record.folder
    trials = _load(folder / "trials")
    if trials is None:
        return None
    parts: dict[str, Any] = {"scores": trial_scores(trials, record.trials, chance)}
    for key, phase in (("confirmation", "confirm"), ("sweep", "sensitivity")):
        parts[key] = _finished(folder / phase)
    parts["recheck"], parts["final"] = _finished(folder / "recheck"), _load(folder / "final")
    return parts | {"winners": record.winners}


def analyse_study(
    study_dir: str | Path, target: float | None = None, margin_pp: float | None = None
) -> StudyAnalysis:
    """Every statistic of the study report, from the folder alone (``margin_pp``: --margin,
    replacing the workload's own)."""
    study_dir = Path(study_dir)
    state = read_state(study_dir)
    config = load_config(study_dir, state)
    draws = []
    for record in state.studies[: config.studies]:
        parts = read_draw(study_dir, record, config.workload.chance)
        if parts is None:
            break
        draws.append(parts)
    if not draws:
        raise ResultsError(f"{study_dir}: no complete trial yet (run the study first)")
    return study_analysis(config, state, draws, target, margin_pp)


def draw_analysis(config: StudyConfig, index: int, parts: dict[str, Any]) -> DrawAnalysis:
    """One study's choices and its final runs' metrics. The winners are the ones its protocol
    decided and recorded (``parts["winners"]``, from study.json); the rest of the choice (the
    confirmation means, the sweep and its check) is shown from the phases' runs."""
    choice = choose(config.draw(index), parts["scores"], parts.get("confirmation"),
                    parts.get("sweep"), parts.get("recheck"))  # fmt: skip
    choice = replace(choice, winners=recorded_winners(parts["winners"]))
    final = parts.get("final")
    metrics = None
    if final is not None:
        metrics = stats.final_metrics(final)
        metrics = metrics[metrics["schedule"].astype(str).isin(choice.winners)]
    return DrawAnalysis(index, choice, parts["scores"], metrics)


def recorded_winners(winners: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The winners as study.json records them, their numbers read back (null: NaN)."""
    numbers = ("validation_accuracy", "confirmation_mean")
    # a format-1 winner (before confirmation) is the best single-seed trial
    legacy = {"confirmed": False, "confirmation_mean": None, "source": "trials"}
    return {
        family: (legacy | winner) | {k: json_number((legacy | winner)[k]) for k in numbers}
        for family, winner in winners.items()
    }


def study_analysis(
    config: StudyConfig,
    state: StudyState | dict[str, Any],
    draws: list[dict[str, Any]],
    target: float | None = None,
    margin_pp: float | None = None,
) -> StudyAnalysis:
    """Every statistic of the study report from its studies' phases (``read_draw``'s parts:
    ``scores``, the recorded ``winners`` and the phases' frames, None before they ran). Study
    0 is shown in detail; every study enters the per-study table and the headline across
    studies."""
    if not isinstance(state, StudyState):  # a document in study.json's shape
        state = StudyState.from_json(state)
    studies = [draw_analysis(config, i, parts) for i, parts in enumerate(draws)]
    first, scores, final = studies[0], draws[0]["scores"], draws[0].get("final")
    winners = first.choice.winners
    margin = workload_margin(config.workload, margin_pp)
    found: dict[str, Any] = {"points": first.choice.points}
    if first.choice.points is not None:
        curve = sensitivity_curve(first.choice.points)
        found |= {"curve": curve, "flat": flatness(curve, config.flatness_pp)}
    if final is not None:
        present = set(final.schedules) & set(final.runs["schedule"].astype(str))
        families = [f for f in winners if f in present]
        if families:
            found["main"] = final_comparison(final, families, target, margin)
            target = found["main"].target
        if set(ZERO_BUDGET_LABELS) <= present:
            found["zero"] = final_comparison(
                final, ["lr-find-constant", "lr-find-clr"], target, margin
            )
            if families:
                found["versus"] = final_comparison(
                    final, [families[0], "lr-find-clr"], target, margin
                )
        found["final_all"] = final
    baseline = stats.resolve_baseline([f.label for f in config.families], None)
    done = [s.metrics for s in studies if s.metrics is not None]
    table = per_study(done, baseline, chance=config.workload.chance)
    chance = config.workload.chance
    if config.until_decided:
        across = sequential_across(
            table, baseline, done, margin.value, config.studies, chance=chance
        )
    else:
        across = across_studies(table, baseline, done, margin.value, chance=chance)
    optimizers = [(f.label, f.optimizer or config.workload.optimizer) for f in config.families]
    winners_by_study = [s.choice.winners for s in studies]
    grid = grid_analysis(optimizers, done, winners_by_study, margin.value, chance)
    return StudyAnalysis(
        state=state,
        config=config,
        studies=studies,
        scores=scores,
        budget=best_vs_budget(scores, config.bootstrap),
        budget_over_studies=budget_over_studies(
            [parts["scores"] for parts in draws], config.bootstrap
        ),
        baseline=baseline,
        margin=margin,
        per_study=table,
        across=across,
        grid=grid,
        **found,
    )


def conclusion(analysis: StudyAnalysis) -> list[str]:
    """The generated answer, one paragraph per question (plus the tuning-effort note)."""
    config = analysis.config
    paragraphs = study_prose.sensitivity_warnings(analysis.studies)
    headline = study_prose.answer_repeats(
        analysis.across, analysis.per_study, config.studies, analysis.baseline
    )
    if headline:
        paragraphs.insert(0, headline)
    if analysis.grid is not None:
        paragraphs[1 if headline else 0 : 1 if headline else 0] = [
            grid_report.best_line(analysis.grid),
            *grid_report.cycles_lines(analysis.grid),
        ]
    if analysis.main is not None:
        answer = study_prose.answer_tuned(analysis.main.comparison, config.budget, config.seeds)
        paragraphs.append(say("study", "tuned_within", config.studies, answer))
    else:
        paragraphs.append(say("study", "no_test_yet"))
    paragraphs.append(study_prose.budget_note(analysis.budget, config.budget, config.flatness_pp))
    if analysis.flat is not None:
        paragraphs.append(
            study_prose.answer_sensitivity(
                analysis.flat, analysis.curve, config.flatness_pp, config.sensitivity_seeds
            )
        )
    bounds = analysis.state.lr_find
    paragraphs.append(study_prose.answer_zero_budget(analysis.zero, analysis.versus, bounds))
    return [p for p in paragraphs if p]


def _figures(
    analysis: StudyAnalysis, colors: dict[str, Any], kept: dict[str, bytes]
) -> list[dict[str, Any]]:
    config = analysis.config
    budget = study_figures.budget_figure(analysis.budget, colors)
    trials = study_figures.trials_figure(analysis.scores, colors)
    specs = [
        figure_spec("budget", budget, prefix="study_"),
        figure_spec("trials", trials, prefix="study_"),
    ]
    if analysis.grid is not None:
        forest = grid_report.forest_figure(analysis.grid, colors)
        specs.insert(0, figure_spec("grid", forest, prefix="study_"))
    if analysis.curve is not None:
        figure = study_figures.sensitivity_figure(
            analysis.points, analysis.curve, analysis.flat, colors, config.flatness_pp
        )
        values = (config.flatness_pp, study_figures.ZOOM_PP)
        specs.append(figure_spec("sensitivity", figure, *values, prefix="study_"))
    final = analysis.final_all
    if final is not None:
        labels = list(final.schedules)
        final_colors = {s: colors.get(s, c) for s, c in page.palette(labels).items()}
        accuracy = run_figures.final_accuracy_figure(stats.final_metrics(final), final_colors)
        specs.append(figure_spec("final-accuracy", accuracy, prefix="study_"))
        rates = kept.get("learning-rate") if final.batches.empty else None
        if not final.batches.empty or rates is not None:  # compact data: the PNG as it was
            shown = rates if rates is not None else run_figures.lr_figure(final, final_colors)
            specs.append(figure_spec("learning-rate", shown, prefix="study_"))
    for entry in specs:  # a kept figure is its PNG's bytes
        if isinstance(entry["figure"], bytes):
            entry["png"] = entry.pop("figure")
    return specs


def _kept_figures(study_dir: Path) -> dict[str, bytes]:
    """A rendered report's per-batch figures, for a study re-rendered from its compact data
    (or extended from a copy of it: ``study_compact.KEPT_RATES``)."""
    places = [study_dir / study_compact.KEPT_RATES]
    if study_compact.is_compact(study_dir):
        places.insert(0, study_dir.parent / "figures" / study_compact.KEPT_RATES)
    for place in places:
        if place.is_file():
            return {"learning-rate": place.read_bytes()}
    return {}


def render_study(
    study_dir: str | Path,
    out_dir: str | Path,
    formats: Sequence[str] = page.FORMATS,
    target: float | None = None,
    templates: Path = page.TEMPLATES,
    margin_pp: float | None = None,
) -> dict[str, Path]:
    """Write report.html / report.md (+ figures/) of a study folder; returns the paths."""
    formats = page.check_options(formats, target)
    study_dir = Path(study_dir)
    analysis = analyse_study(study_dir, target, margin_pp)
    return write_study(study_dir, analysis, out_dir, formats, templates)


def write_study(
    study_dir: Path,
    analysis: StudyAnalysis,
    out_dir: str | Path,
    formats: Sequence[str] = page.FORMATS,
    templates: Path = page.TEMPLATES,
) -> dict[str, Path]:
    """The study report of ``analysis`` (``analyse_study``'s) written to ``out_dir``, with the
    compact data that re-renders it (``clrbench.study.compact``)."""
    colors = page.palette([f.label for f in analysis.config.families])
    first = study_lead.figure(analysis, colors)
    specs = _figures(analysis, colors, _kept_figures(study_dir))
    figures = page.encode_figures(([first] if first else []) + specs)
    context = _context(study_dir, analysis, figures, colors) | {
        "answer": study_lead.answer(analysis)
    }
    paths = page.write_pages(out_dir, "study", context, figures, formats, templates)
    studies = len(analysis.studies)
    study_compact.write_study_compact(study_dir, analysis.state, studies, Path(out_dir))
    return paths | {"summary": write_summary(analysis, out_dir)}


def _context(
    study_dir: Path, analysis: StudyAnalysis, figures: list, colors: dict
) -> dict[str, Any]:
    study_dir = study_compact.source_folder(study_dir)  # the study a report's data came from
    headline = []
    if not analysis.per_study.empty:
        headline = [across_table(analysis), per_study_table(analysis)]
    if analysis.grid is not None:
        headline = [
            grid_report.grid_table(analysis.grid, analysis.config.studies),
            grid_report.cost_table(analysis.grid, analysis.budget_over_studies),
            *headline,
        ]
    tables = [winners_table(analysis)]
    if analysis.config.confirm_top:
        tables.append(confirmation_table(analysis))
    tables.append(budget_table(analysis.budget, analysis.config.workload.chance))
    if analysis.config.studies > 1:
        tables.append(
            budget_over_studies_table(analysis.budget_over_studies, analysis.config.workload.chance)
        )
    if analysis.flat is not None:
        tables.append(sensitivity_table(analysis))
    if any(s.choice.check is not None for s in analysis.studies):
        tables.append(recheck_table(analysis))
    final_tables = []
    if analysis.main is not None:
        main = analysis.main
        final_tables += [
            report_tables.summary_table(main.summary, main.resolution),
            report_tables.comparison_table(main.comparison),
            report_tables.speed_table(main.speed, main.target),
        ]
    if analysis.zero is not None:
        zero = report_tables.comparison_table(analysis.zero.comparison)
        title = "Zero-budget arm: lr-find-clr against lr-find-constant"
        final_tables.append(zero | {"id": "zero-budget", "title": title})
    if analysis.versus is not None:
        versus = report_tables.comparison_table(analysis.versus.comparison)
        baseline = analysis.versus.comparison["baseline"].iloc[0]
        title = f"Zero-budget cycle against the tuned {baseline}"
        final_tables.append(versus | {"id": "zero-vs-tuned", "title": title})
    config = analysis.config
    return {
        "title": f"clrbench study: {config.name}",
        "subtitle": f"{len(config.families)} families, {config.budget} trials each, "
        f"{plural(config.studies, 'study', 'studies')}, "
        f"{config.seeds} final seeds, {plural(config.workload.epochs, 'epoch')} "
        f"per run, from {study_dir}",
        "conclusion": conclusion(analysis),
        "main_conclusion": run_conclusion(analysis.main) if analysis.main else "",
        "headline_tables": [report_tables.aligned(t) for t in headline],
        "detail": "Study 0 in detail" if config.studies > 1 else "",
        "tables": [report_tables.aligned(t) for t in tables],
        "final_tables": [report_tables.aligned(t) for t in final_tables],
        "trials_table": report_tables.aligned(trials_table(analysis.scores)),
        "colors": page.hex_colors(colors),
        "figures": figures,
        "protocol": protocol_rows(analysis),
        "commands": [
            f"python -m clrbench study --config {study_dir}/study.toml --out {study_dir}",
            f"python -m clrbench report {study_dir}",
        ],
    }
