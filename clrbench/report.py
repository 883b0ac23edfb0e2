"""Comparison report of a results folder: seaborn figures, tables, Markdown and HTML.

Figures are built on plain ``matplotlib.figure.Figure`` objects rendered by the Agg canvas
(no pyplot, no global backend switch) and returned to the caller, so tests can inspect
them. Every figure colours a schedule the same way: one palette from the schedule labels
in experiment order. Reads only the results folder; never imports TensorFlow.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import stats as sps

from clrbench import stats
from clrbench.errors import ClrbenchError
from clrbench.results import RUN_COLUMNS, Results

FORMATS = ("html", "md")
SMOOTH_ITERATIONS = 50  # centred rolling-mean window for the per-batch curves
MAX_POINTS = 600  # points per curve after downsampling the per-batch data
FIGURE_DPI = 100
TOOLS = ("clrbench", "pandas", "numpy", "scipy", "matplotlib", "seaborn", "jinja2")


def palette(schedules: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per schedule label, in experiment order (colour-blind safe up to 10)."""
    name = "colorblind" if len(schedules) <= 10 else "husl"
    return dict(zip(schedules, sns.color_palette(name, len(schedules)), strict=True))


def _figure(rows: int = 1, cols: int = 1, height: float = 4.0, **kwargs: Any):
    figure = Figure(figsize=(10, height * rows), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, cols, squeeze=False, **kwargs)


def _legend(figure: Figure, colors: dict[str, Any], present: set[str]) -> None:
    """Figure legend naming every schedule (those without data in this figure say so)."""
    handles = [Line2D([], [], color=c, linewidth=3) for c in colors.values()]
    labels = [s if s in present else f"{s} (no data)" for s in colors]
    ncols = min(len(labels), 5)
    figure.legend(handles, labels, loc="outside upper center", ncols=ncols, frameon=False)


def _ok(frame: pd.DataFrame, results: Results) -> pd.DataFrame:
    ok_ids = results.runs.loc[results.runs["status"] == "ok", "run_id"]
    return frame[frame["run_id"].isin(ok_ids)]


def _mean_band(frame: pd.DataFrame, x: str, value: str) -> pd.DataFrame:
    """Mean over seeds per (schedule, x) with a 95% t-interval of the mean (NaN for n < 2)."""
    grouped = frame.groupby(["schedule", x], observed=True)[value]
    agg = grouped.agg(["mean", "std", "count"]).reset_index()
    quantile = sps.t.ppf(0.975, np.maximum(agg["count"] - 1, 1))
    half = np.where(agg["count"] > 1, quantile * agg["std"] / np.sqrt(agg["count"]), np.nan)
    return agg.assign(low=agg["mean"] - half, high=agg["mean"] + half)


def _hue(colors: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """seaborn arguments that colour by schedule with the shared palette (no seaborn legend)."""
    return dict(hue="schedule", hue_order=list(colors), palette=colors, legend=False, **kwargs)


def _plot_band(ax, agg: pd.DataFrame, x: str, colors: dict[str, Any], marker=None) -> None:
    line = dict(estimator=None, ax=ax, marker=marker, linewidth=1.4)
    sns.lineplot(data=agg, x=x, y="mean", **_hue(colors, **line))
    for schedule, part in agg.groupby("schedule", observed=True):
        ax.fill_between(part[x], part["low"], part["high"], color=colors[schedule], alpha=0.2)


def lr_figure(results: Results, colors: dict[str, Any]) -> Figure:
    """Figure 1: each schedule's learning rate per iteration (one seed), epochs marked."""
    figure, axes = _figure(height=4.2)
    ax = axes[0, 0]
    first = results.batches.groupby("schedule", observed=True)["run_id"].first()
    rates = results.batches[results.batches["run_id"].isin(first.to_numpy())]
    sns.lineplot(data=rates, x="step", y="lr", **_hue(colors, estimator=None, ax=ax, lw=1.2))
    longest = results.epochs.groupby("run_id", observed=True)["step"].count().idxmax()
    for boundary in results.epochs.loc[results.epochs["run_id"] == longest, "step"][:-1] + 1:
        ax.axvline(boundary, color="0.85", linewidth=0.7, zorder=0)
    ax.set(xlabel="iteration (optimizer step)", ylabel="learning rate")
    ax.set_title("Learning rate per iteration (grey lines: epoch boundaries)")
    _legend(figure, colors, set(rates["schedule"].astype(str)))
    return figure


def smoothing_window(results: Results) -> int:
    """Rolling-mean window: 50 iterations, or a tenth of the shortest ok run if shorter."""
    lengths = _ok(results.batches, results).groupby("run_id", observed=True).size()
    shortest = int(lengths.min()) if len(lengths) else 0
    return max(1, min(SMOOTH_ITERATIONS, shortest // 10))


def smoothed_batches(results: Results, window: int) -> pd.DataFrame:
    """Ok runs' per-batch loss/accuracy, centred rolling mean per run, then downsampled."""
    batches = _ok(results.batches, results).sort_values(["run_id", "step"], kind="stable")
    by_run = batches.groupby("run_id", observed=True)[["loss", "accuracy"]]
    smooth = by_run.rolling(window, center=True, min_periods=1).mean()
    smooth = smooth.reset_index(level=0, drop=True)
    stride = max(1, int(batches["step"].max() + 1) // MAX_POINTS) if len(batches) else 1
    keep = batches["step"] % stride == 0
    frame = batches.loc[keep, ["run_id", "schedule", "seed", "step"]]
    return frame.join(smooth.loc[keep[keep].index])


def training_figure(results: Results, colors: dict[str, Any], window: int) -> Figure:
    """Figure 2: smoothed training loss and accuracy per iteration, mean over seeds ± 95%."""
    figure, axes = _figure(2, 1, height=3.4, sharex=True)
    smooth = smoothed_batches(results, window)
    what = f"centred rolling mean over {window} iterations per run; mean over seeds, 95% band"
    for ax, column in zip(axes[:, 0], ("loss", "accuracy"), strict=True):
        _plot_band(ax, _mean_band(smooth, "step", column), "step", colors)
        ax.set(ylabel=f"training {column}", xlabel="iteration (optimizer step)")
        ax.set_title(f"Training {column} per batch ({what})", fontsize=10)
    axes[0, 0].set_yscale("log")
    _legend(figure, colors, set(smooth["schedule"].astype(str)))
    return figure


def evaluation_figure(results: Results, colors: dict[str, Any]) -> Figure:
    """Figure 3: test accuracy and test loss after each epoch, mean over seeds ± 95%."""
    figure, axes = _figure(1, 2, height=4.0)
    epochs = _ok(results.epochs, results).assign(epoch_number=lambda f: f["epoch"] + 1)
    for ax, column in zip(axes[0], ("test_accuracy", "test_loss"), strict=True):
        _plot_band(ax, _mean_band(epochs, "epoch_number", column), "epoch_number", colors, "o")
        ax.set(xlabel="epoch", ylabel=column.replace("_", " "))
        ax.set_title(f"{column.replace('_', ' ').capitalize()} per epoch (mean, 95% band)")
    _legend(figure, colors, set(epochs["schedule"].astype(str)))
    return figure


def _categorical_axis(ax, colors: dict[str, Any]) -> None:
    ax.set_yticks(range(len(colors)), labels=list(colors))
    ax.set_ylim(len(colors) - 0.5, -0.5)
    ax.set_ylabel("")


def _crosses(ax, frame: pd.DataFrame, x: Any, colors: dict[str, Any]) -> None:
    """Runs drawn as X on a schedule-per-row axis (x: a column name or one position)."""
    for position, schedule in enumerate(colors):
        rows = frame[frame["schedule"] == schedule]
        spread = np.linspace(-0.15, 0.15, len(rows)) if len(rows) > 1 else np.zeros(len(rows))
        where = rows[x].to_numpy() if isinstance(x, str) else np.full(len(rows), x)
        ax.scatter(where, position + spread, marker="X", s=60, color=colors[schedule], zorder=3)


def final_accuracy_figure(final: pd.DataFrame, colors: dict[str, Any]) -> Figure:
    """Figure 4: final test accuracy of every ok seed per schedule, over a box."""
    figure, axes = _figure(height=0.6 * len(colors) + 1.6)
    ax = axes[0, 0]
    ok = final[(final["status"] == "ok") & final["final_test_accuracy"].notna()]
    ok = ok.assign(accuracy_pct=ok["final_test_accuracy"] * 100)
    if len(ok):
        kw = _hue(colors, data=ok, x="accuracy_pct", y="schedule", order=list(colors), ax=ax)
        sns.boxplot(**kw, dodge=False, fill=False, showfliers=False, width=0.5)
        sns.stripplot(**kw, dodge=False, size=7, jitter=0.12, edgecolor="black", linewidth=0.6)
    _categorical_axis(ax, colors)
    ax.set(xlabel="final test accuracy (%)")
    ax.set_title("Final test accuracy per seed (points) over its box (ok runs)")
    return figure


def _target_panel(ax, reach: pd.DataFrame, column: str, edge: float, colors) -> None:
    reached = reach[reach["reached"]]
    if len(reached):
        kw = _hue(colors, y="schedule", order=list(colors), ax=ax, dodge=False)
        sns.stripplot(data=reached, x=column, size=7, jitter=0.12, **kw)
    _crosses(ax, reach[~reach["reached"]], edge, colors)
    ax.axvline(edge, color="0.6", linestyle="--", linewidth=0.8)
    where = dict(xycoords=("data", "axes fraction"), textcoords="offset points")
    ax.annotate("not reached", (edge, 1), (-4, -12), ha="right", size=9, color="0.35", **where)
    ax.set_xlim(0, edge * 1.06)
    _categorical_axis(ax, colors)


def target_figure(
    results: Results, reach: pd.DataFrame, colors: dict[str, Any], target: float
) -> Figure:
    """Figure 5: iterations and seconds until the test accuracy first reaches ``target``."""
    figure, axes = _figure(1, 2, height=0.6 * len(colors) + 1.8)
    ok = reach[reach["status"] == "ok"]
    ends = {
        "iterations": float(results.epochs["step"].max() + 1),
        "seconds": float(results.epochs["time_s"].max()),
    }
    for ax, column in zip(axes[0], ("iterations", "seconds"), strict=True):
        _target_panel(ax, ok, column, ends[column] * 1.05, colors)
        ax.set_xlabel(f"{column} until test accuracy ≥ {target * 100:g}% (first such epoch)")
    axes[0, 1].set_yticklabels([])
    figure.suptitle(f"Time to reach {target * 100:g}% test accuracy (ok runs; X: not reached)")
    return figure


def cost_figure(final: pd.DataFrame, colors: dict[str, Any]) -> Figure:
    """Figure 6: wall-clock seconds of every run (bars: mean of the ok runs; X: not ok)."""
    figure, axes = _figure(height=0.6 * len(colors) + 1.6)
    ax = axes[0, 0]
    timed = final[final["wall_s"].notna()]
    ok = timed[timed["status"] == "ok"]
    if len(ok):
        kw = _hue(colors, data=ok, x="wall_s", y="schedule", order=list(colors), ax=ax)
        sns.barplot(**kw, dodge=False, errorbar=None, alpha=0.35, width=0.6)
        sns.stripplot(**kw, dodge=False, size=6, jitter=0.12, edgecolor="black", linewidth=0.5)
    _crosses(ax, timed[timed["status"] != "ok"], "wall_s", colors)
    _categorical_axis(ax, colors)
    ax.set(xlabel="wall-clock seconds per run")
    ax.set_title("Cost: wall time per run (points; X: diverged or failed), mean of ok runs (bars)")
    return figure


def build_figures(
    results: Results, final: pd.DataFrame, reach: pd.DataFrame, target: float
) -> list[dict[str, Any]]:
    """Every report figure as ``{"name", "title", "caption", "figure"}``, in report order."""
    colors = palette(results.schedules)
    window = smoothing_window(results)
    not_ok = int((results.runs["status"] != "ok").sum())
    excluded = f" {not_ok} run(s) not ok are left out (see Runs)." if not_ok else ""
    specs = [
        ("learning-rate", "Learning rate", lr_figure(results, colors),
         "The rate the optimizer applied at each iteration (one seed per schedule: every seed "
         "has the same rate). Light vertical lines mark epoch boundaries."),
        ("training", "Training loss and accuracy", training_figure(results, colors, window),
         f"Per-batch training loss (log scale) and accuracy, smoothed by a centred rolling mean "
         f"over {window} iterations within each run, then averaged over seeds; the band is the "
         f"95% t-interval of the mean over seeds.{excluded}"),
        ("test", "Test accuracy and loss", evaluation_figure(results, colors),
         f"Held-out test accuracy and loss after each epoch: mean over seeds with the 95% "
         f"t-interval of the mean.{excluded}"),
        ("final-accuracy", "Final test accuracy per seed", final_accuracy_figure(final, colors),
         f"Each point is one seed's test accuracy after the last epoch; the box shows the "
         f"quartiles.{excluded}"),
        ("time-to-target", "Time to target", target_figure(results, reach, colors, target),
         f"Iterations and wall-clock seconds until the first epoch whose test accuracy is at "
         f"least {target * 100:g}%. Runs that never reach it are drawn as X at the right "
         f"edge, labelled 'not reached'.{excluded}"),
        ("cost", "Cost", cost_figure(final, colors),
         "Wall-clock seconds of every run with a recorded time (diverged and failed runs stop "
         "early); bars are the mean over ok runs."),
    ]  # fmt: skip
    return [dict(zip(("name", "title", "figure", "caption"), s, strict=True)) for s in specs]


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return buffer.getvalue()


# --- tables: numbers formatted once here, laid out by the templates ---


def _pct(value: float, digits: int = 2) -> str:
    return f"{value * 100:.{digits}f}" if np.isfinite(value) else "–"


def _num(value: float, fmt: str = ".1f") -> str:
    return format(value, fmt) if value is not None and np.isfinite(value) else "–"


def summary_table(summary: pd.DataFrame) -> dict[str, Any]:
    """Per-schedule summary, best first."""
    target = summary["target"].iloc[0] * 100
    headers = ["Schedule", "Seeds ok/total", "Final test acc. % (mean ± sd)", "95% CI of mean",
               "Best test acc. % (mean)", "Final train loss", f"Iterations to {target:g}% (median)",
               "Reached target", f"Seconds to {target:g}% (median)", "Wall s (mean)"]  # fmt: skip
    rows = []
    for r in summary.itertuples():
        spread = f" ± {_pct(r.final_test_accuracy_std)}" if r.ok > 1 else ""
        rows.append([
            str(r.schedule), f"{r.ok}/{r.runs}", _pct(r.final_test_accuracy_mean) + spread,
            f"{_pct(r.final_test_accuracy_ci_low)} – {_pct(r.final_test_accuracy_ci_high)}",
            _pct(r.best_test_accuracy_mean), _num(r.final_train_loss_mean, ".4f"),
            _num(r.iterations_to_target_median, ".0f"), f"{r.n_reached}/{r.ok}",
            _num(r.seconds_to_target_median), _num(r.wall_s_mean),
        ])  # fmt: skip
    note = (
        "Over the ok runs of each schedule, best first. CI: two-sided 95% t-interval of the mean "
        "final test accuracy. Best: each run's best epoch, averaged over seeds. Time to target: "
        "median over the ok runs that reached it (iterations = last step of that epoch + 1)."
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
         stats.format_p(r.p_value), stats.format_p(r.p_holm), _num(r.hedges_g, ".2f"),
         r.verdict]
        for r in comparison.itertuples()
    ]  # fmt: skip
    title = f"Against the baseline: {baseline}"
    note = (
        f"Final test accuracy of each schedule minus {baseline}'s (ok runs). CI and p from "
        f"Welch's t-test; p (Holm): adjusted for the {len(comparison)} comparisons by Holm's "
        f"step-down method; significant when below {stats.ALPHA}. Hedges' g: standardised "
        f"difference. Fewer than {stats.MIN_SEEDS} ok seeds on either side: not tested."
    )
    return {"id": "comparison", "title": title, "headers": headers, "rows": rows, "note": note}


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
        else:
            text = "; ".join(distinct[:3]) + f" ({len(distinct)} distinct values)"
        rows.append((column.replace("_", " "), text))
    tools = ", ".join(f"{name} {_version(name)}" for name in TOOLS)
    rows.append(("report made with", f"python {sys.version.split()[0]}, {tools}"))
    rows.append(("report generated", datetime.now(UTC).isoformat(timespec="seconds")))
    return rows


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


# --- rendering ---

_NUMERIC_CELL = re.compile(r"^[-+−–±<>\d\s./%]*((to|vs)[-+−–±<>\d\s./%]*)?$")


def _aligned(table: dict[str, Any]) -> dict[str, Any]:
    """Mark the columns whose every cell is a number (right-aligned in both formats)."""
    columns = list(zip(*table["rows"], strict=True)) or [()] * len(table["headers"])
    numeric = [
        bool(cells)
        and all(_NUMERIC_CELL.match(c) for c in cells)
        and any(ch.isdigit() for c in cells for ch in c)
        for cells in columns
    ]
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
        raise ClrbenchError(f"--format must be one or more of {','.join(FORMATS)}, got {formats}")
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
    return {
        "target": chosen,
        "target_is_default": target is None,
        "final": final,
        "summary": summary,
        "comparison": comparison,
        "reach": stats.steps_to_target(results, chosen),
        "conclusion": stats.conclusion(summary, comparison),
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
            "summary": _aligned(summary_table(analysis["summary"])),
            "comparison": _aligned(comparison_table(analysis["comparison"])),
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
    specs = build_figures(results, analysis["final"], analysis["reach"], analysis["target"])
    figures = _figure_entries(specs)
    context = _context(results, analysis, figures)
    out = _output_folder(out_dir)
    env = _environment()
    written: dict[str, Path] = {}
    for kind in formats:
        if kind == "md":
            (out / "figures").mkdir(exist_ok=True)
            for figure in figures:
                (out / figure["file"]).write_bytes(figure["png"])
        written[kind] = out / f"report.{kind}"
        written[kind].write_text(env.get_template(f"report.{kind}.j2").render(context))
    written["csv"] = out / "summary.csv"
    analysis["summary"].to_csv(written["csv"], index=False)
    return written
