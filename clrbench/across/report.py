"""The cross-workload report: the same schedules on several workloads, one results folder each.

``render_across`` loads the folders (``load_workloads``), computes everything
(``clrbench.across.analysis``) and only then writes: ``report.html`` (self-contained),
``report.md`` + ``figures/*.png`` (through ``clrbench.reporting.page``, templates
``across.html.j2`` / ``across.md.j2``), ``across.json`` (every number, for machines) and
``across.csv`` (the differences, tidy). Reads only the results folders; never imports
TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clrbench.across import analysis as across
from clrbench.across import tables
from clrbench.across.analysis import AcrossAnalysis
from clrbench.across.figures import build_across_figures
from clrbench.analysis.workload import workload_name
from clrbench.errors import ResultsError
from clrbench.reporting import lead, page
from clrbench.reporting.page import FORMATS, check_options
from clrbench.reporting.tables import aligned, provenance_rows
from clrbench.reporting.words import say
from clrbench.store import atomic
from clrbench.store.compact import COMPACT_DIR, holds_compact, write_compact
from clrbench.store.results import Results, load_results
from clrbench.text import json_value, plural

JSON_FORMAT = 1


def load_workloads(folders: Sequence[str | Path]) -> dict[str, Results]:
    """Each results folder loaded and named by its workload, in order; one ResultsError line
    for no folder, a folder without completed runs, or two folders of one workload."""
    if not folders:
        raise ResultsError("a cross-workload report needs at least one results folder")
    named: dict[str, Results] = {}
    for folder in folders:
        results = load_results(folder)
        name = workload_name(results)
        if name in named:
            raise ResultsError(
                f"{folder}: workload {name} is also in {named[name].path} (one folder per workload)"
            )
        named[name] = results
    return named


def holds_workloads(folder: Path) -> list[Path]:
    """The results folders directly inside ``folder`` (what ``run --workload A,B`` writes),
    sorted by name, or a rendered cross-workload report's compact data (``data/<workload>``);
    empty for any other folder."""
    if (folder / "runs").is_dir() or not folder.is_dir():
        return []
    found = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "runs").is_dir())
    return found or compact_workloads(folder)


def compact_workloads(folder: Path) -> list[Path]:
    """A rendered cross-workload report's compact data: one folder per workload in ``data/``."""
    data = folder / COMPACT_DIR
    if not data.is_dir():
        return []
    return sorted(p for p in data.iterdir() if p.is_dir() and holds_compact(p))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON records (plain values, categoricals as strings)."""
    frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == "category"})
    return [{k: json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def document(analysis: AcrossAnalysis, named: dict[str, Results]) -> dict[str, Any]:
    """``across.json``: every number of the report."""
    agreement, profile = analysis.agreement, analysis.profile
    targets = analysis.targets.set_index("workload")
    workloads = [
        {"name": name, "folder": str(results.path), "schedules": results.schedules}
        | {"seeds": int(results.runs["seed"].nunique())}
        | {"target": json_value(targets.loc[name, "target"])}
        | {"target_source": targets.loc[name, "source"]}
        | {"evaluation_interval_steps": json_value(targets.loc[name, "resolution"])}
        for name, results in named.items()
    ]
    return {
        "format": JSON_FORMAT,
        "about": 'null: not defined (NaN); "inf": never (a target not reached). Time to '
        "target is in optimizer steps (seconds beside them); accuracies are fractions. "
        "differences: outcome is better / worse / equivalent / undecided at the workload's "
        "margin (a fraction; docs/concepts/protocol.md).",
        "workloads": workloads,
        "baseline": analysis.baseline,
        "summary": records(analysis.summary),
        "differences": records(analysis.differences),
        "rank_agreement": {
            "schedules": agreement.schedules,
            "left_out": agreement.left_out,
            "ranks": records(agreement.ranks),
            "kendalls_w": json_value(agreement.w),
            "chi2": json_value(agreement.chi2),
            "df": agreement.df,
            "p_value": json_value(agreement.p_value),
            "status": agreement.status,
            "taus": records(agreement.taus),
        },
        "performance_profile": {
            "time_unit": "optimizer steps",
            "tau_max": across.TAU_MAX,
            "schedules": analysis.profiled,
            "ratios": records(profile.ratios),
            "rho": records(profile.curve),
            "scores": {str(r.schedule): json_value(r.score) for r in profile.scores.itertuples()},
        },
    }


def _context(
    analysis: AcrossAnalysis, named: dict[str, Results], figures: list, out: Path
) -> dict[str, Any]:
    folders = {name: str(results.path) for name, results in named.items()}
    seeds = {name: int(r.runs["seed"].nunique()) for name, r in named.items()}
    schedules = list(dict.fromkeys(s for r in named.values() for s in r.schedules))
    first = next(iter(named.values()))
    runs = sum(len(r.runs) for r in named.values())
    return {
        "title": f"clrbench cross-workload report: {', '.join(analysis.workloads)}",
        "subtitle": f"{plural(len(analysis.workloads), 'workload')}, "
        f"{plural(len(schedules), 'schedule')}, {plural(runs, 'run')}",
        "conclusion": tables.conclusion(analysis, seeds),
        "baseline": analysis.baseline or "none (no schedule is in every workload)",
        "commands": [
            *(
                f"python -m clrbench run --config {f}/experiment.toml --out {f}"
                for f in folders.values()
            ),
            f"python -m clrbench report {' '.join(folders.values())} --out {out}",
        ],  # fmt: skip
        "tables": {
            "workloads": aligned(tables.workloads_table(analysis, folders)),
            "differences": aligned(tables.differences_table(analysis)),
            "ranks": aligned(tables.ranks_table(analysis)),
            "taus": aligned(tables.taus_table(analysis)),
            "times": aligned(tables.times_table(analysis)),
            "profile": aligned(tables.profile_table(analysis)),
        },
        "agreement": tables.agreement_rows(analysis),
        "answer": answer(analysis),
        "colors": page.hex_colors(page.palette(schedules)),
        "figures": figures,
        "provenance": [
            *((f"{w} results", f) for w, f in folders.items()),
            *provenance_rows(first)[-2:],
        ],  # fmt: skip
    }


def answer(analysis: across.AcrossAnalysis) -> str:
    """The report's first sentence: on each workload, each schedule's final test accuracy minus
    the baseline's with its Welch 95% interval, largest first."""
    groups = analysis.differences.groupby("workload", sort=False)
    by_workload = [(str(workload), lead.entries(rows)) for workload, rows in groups]
    return say("lead", "across", analysis.baseline, by_workload)


def render_across(
    folders: Sequence[str | Path],
    out: str | Path,
    formats: Sequence[str] = FORMATS,
    baseline: str | None = None,
    templates: Path = page.TEMPLATES,
    margin_pp: float | None = None,
) -> dict[str, Path]:
    """Write the cross-workload report of ``folders`` (one results folder per workload) into
    ``out``: report.html / report.md (+ figures/*.png), across.json and across.csv
    (``margin_pp``: --margin for every workload, else each workload's own margin).

    Everything is loaded and computed before the first file is written. Returns the files by
    kind (``html``, ``md``, ``json``, ``csv``).
    """
    formats = check_options(formats, None)
    named = load_workloads(folders)
    analysis = across.analyse(named, baseline, margin_pp)
    schedules = list(dict.fromkeys(s for r in named.values() for s in r.schedules))
    specs = build_across_figures(analysis, page.palette(schedules))
    figures = page.encode_figures(specs)
    context = _context(analysis, named, figures, Path(out))
    text = json.dumps(document(analysis, named), indent=2, allow_nan=False) + "\n"
    csv = analysis.differences.to_csv(index=False)
    written = page.write_pages(out, "across", context, figures, formats, templates)
    written["json"] = atomic.write_text(Path(out) / "across.json", text)
    written["csv"] = atomic.write_text(Path(out) / "across.csv", csv)
    for name, results in named.items():  # what re-renders it without the results folders
        write_compact(results, Path(out) / COMPACT_DIR / name)
    return written
