"""Report figures: seaborn/matplotlib, long-form data, one colour per schedule everywhere.

Each builder takes the tidy frames and returns a matplotlib ``Figure`` (tests inspect their
legends); ``build_figures`` assembles the six figures of the report with titles and captions
(``figure_spec``: worded by ``templates/words/figures.j2``, as is every title drawn on them).
The colours are ``clrbench.reporting.page.palette``'s; ``page`` encodes the figures.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from clrbench.analysis import stats
from clrbench.reporting.page import palette
from clrbench.reporting.words import say
from clrbench.store.results import Results

SMOOTH_ITERATIONS = 50  # centred rolling-mean window for the per-batch curves
MAX_POINTS = 600  # points per curve after downsampling the per-batch data


def figure_grid(rows: int = 1, cols: int = 1, height: float = 4.0, **kwargs: Any):
    """A report-wide Figure (10 in wide, ``height`` per row) and its axes, always 2-D."""
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
    """Mean over seeds per (schedule, x) and a band: the 95% t-interval of the mean, or the
    min-max range of the seeds where fewer than 3 (a 2-seed t-interval is ±12.7 sd / √2)."""
    grouped = frame.groupby(["schedule", x], observed=True)[value]
    agg = grouped.agg(["mean", "std", "count", "min", "max"]).reset_index()
    half = stats.t_half_width(agg["std"].to_numpy(), agg["count"].to_numpy())
    few = agg["count"] < stats.MIN_SEEDS
    low = np.where(few, agg["min"], agg["mean"] - half)
    return agg.assign(low=low, high=np.where(few, agg["max"], agg["mean"] + half))


def _hue(colors: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """seaborn arguments that colour by schedule with the shared palette (no seaborn legend)."""
    return dict(hue="schedule", hue_order=list(colors), palette=colors, legend=False, **kwargs)


def _plot_band(ax, agg: pd.DataFrame, x: str, colors: dict[str, Any], marker=None) -> None:
    if agg.empty:
        return
    line = dict(estimator=None, ax=ax, marker=marker, linewidth=1.4)
    sns.lineplot(data=agg, x=x, y="mean", **_hue(colors, **line))
    for schedule, part in agg.groupby("schedule", observed=True):
        ax.fill_between(part[x], part["low"], part["high"], color=colors[schedule], alpha=0.2)


def _epoch_starts(epochs: pd.DataFrame) -> np.ndarray:
    """First step of every epoch after the first, from the run with the most epochs."""
    if epochs.empty:
        return np.array([], dtype=np.int64)
    longest = epochs.groupby("run_id", observed=True)["step"].count().idxmax()
    return epochs.loc[epochs["run_id"] == longest, "step"].to_numpy()[:-1] + 1


def lr_figure(results: Results, colors: dict[str, Any]) -> Figure:
    """Figure 1: each schedule's learning rate per iteration (one seed), epochs marked."""
    figure, axes = figure_grid(height=4.2)
    ax = axes[0, 0]
    runs = results.runs[results.runs["run_id"].isin(results.batches["run_id"])]
    shown = runs.assign(not_ok=runs["status"] != "ok").sort_values(["not_ok", "seed"])
    shown = shown.groupby("schedule", observed=True)["run_id"].first()  # an ok run if any
    rates = results.batches[results.batches["run_id"].isin(shown.to_numpy())]
    if len(rates):
        sns.lineplot(data=rates, x="step", y="lr", **_hue(colors, estimator=None, ax=ax, lw=1.2))
    for boundary in _epoch_starts(results.epochs):
        ax.axvline(boundary, color="0.85", linewidth=0.7, zorder=0)
    ax.set(xlabel="iteration (optimizer step)", ylabel="learning rate")
    ax.set_title(say("figures", "learning_rate_drawn_title"))
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


def _positive(agg: pd.DataFrame) -> pd.DataFrame:
    """For a log axis: a non-positive mean is a gap, a band's non-positive low edge is floored
    at half the smallest positive value shown (an error rate of 0 in a smoothing window)."""
    positive = agg["mean"] > 0
    floor = agg.loc[positive, "mean"].min() / 2 if positive.any() else 1.0
    return agg.assign(
        mean=agg["mean"].where(positive), low=agg["low"].clip(lower=floor), high=agg["high"]
    )


def training_figure(results: Results, colors: dict[str, Any], window: int) -> Figure:
    """Figure 2: smoothed training loss and error rate per iteration (log axes), mean over
    seeds, band. An error rate rather than accuracy: accuracy sits near 1 for most of a run."""
    figure, axes = figure_grid(2, 1, height=3.4, sharex=True)
    smooth = smoothed_batches(results, window)
    smooth = smooth.assign(error=1.0 - smooth["accuracy"])
    panels = (("loss", "training loss"), ("error", "training error rate (1 − accuracy)"))
    for ax, (column, label) in zip(axes[:, 0], panels, strict=True):
        _plot_band(ax, _positive(_mean_band(smooth, "step", column)), "step", colors)
        ax.set_yscale("log", nonpositive="mask")
        ax.set(ylabel=label, xlabel="iteration (optimizer step)")
        ax.set_title(say("figures", "training_drawn_title", label, window), fontsize=10)
    _legend(figure, colors, set(smooth["schedule"].astype(str)))
    return figure


def _scale_from_second_epoch(ax, agg: pd.DataFrame) -> None:
    """Fit the vertical axis to epochs 2 onwards (3 or more epochs): epoch 1 is so much worse
    that, included, it flattens every later difference; its points may lie off the axis."""
    later = agg[agg["epoch_number"] >= 2]
    if agg["epoch_number"].max() < 3 or later.empty:
        return
    low, high = later["low"].min(), later["high"].max()
    pad = 0.08 * (high - low) if high > low else 0.01 * abs(high) or 0.01
    ax.set_ylim(low - pad, high + pad)


def evaluation_figure(results: Results, colors: dict[str, Any]) -> Figure:
    """Figure 3: test accuracy and test loss after each epoch, mean over seeds, band."""
    figure, axes = figure_grid(1, 2, height=4.0)
    epochs = _ok(results.epochs, results).assign(epoch_number=lambda f: f["epoch"] + 1)
    for ax, column in zip(axes[0], ("test_accuracy", "test_loss"), strict=True):
        agg = _mean_band(epochs, "epoch_number", column)
        _plot_band(ax, agg, "epoch_number", colors, "o")
        _scale_from_second_epoch(ax, agg)
        label = column.replace("_", " ")
        ax.set(xlabel="epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(say("figures", "test_drawn_title", label))
    _legend(figure, colors, set(epochs["schedule"].astype(str)))
    return figure


def _strips(**kwargs: Any) -> None:
    """``sns.stripplot`` with the same jitter every time: seaborn draws it from NumPy's global
    generator, so it is seeded for the plot (the caller's state put back afterwards) and the
    same results folder gives the same figures, byte for byte."""
    with _seeded_global_rng(0):
        sns.stripplot(**kwargs)


@contextlib.contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    # NumPy's legacy global generator on purpose: it is the one seaborn's jitter reads
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


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
    figure, axes = figure_grid(height=0.6 * len(colors) + 1.6)
    ax = axes[0, 0]
    ok = final[(final["status"] == "ok") & final["final_test_accuracy"].notna()]
    ok = ok.assign(accuracy_pct=ok["final_test_accuracy"] * 100)
    if len(ok):
        kw = _hue(colors, data=ok, x="accuracy_pct", y="schedule", order=list(colors), ax=ax)
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib 3.11 a deprecated `vert`
            warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
            sns.boxplot(**kw, dodge=False, fill=False, showfliers=False, width=0.5)
        _strips(**kw, dodge=False, size=7, jitter=0.12, edgecolor="black", linewidth=0.6)
    _categorical_axis(ax, colors)
    ax.set(xlabel="final test accuracy (%)")
    ax.set_title(say("figures", "final_accuracy_drawn_title"))
    return figure


def _target_panel(ax, reach: pd.DataFrame, column: str, edge: float, colors) -> None:
    reached = reach[reach["reached"]]
    if len(reached):
        kw = _hue(colors, y="schedule", order=list(colors), ax=ax, dodge=False)
        _strips(data=reached, x=column, size=7, jitter=0.12, **kw)
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
    figure, axes = figure_grid(1, 2, height=0.6 * len(colors) + 1.8)
    ok = reach[reach["status"] == "ok"]
    epochs = results.epochs
    ends = {"iterations": epochs["step"].max() + 1, "seconds": epochs["time_s"].max()}
    ends = {k: float(v) if np.isfinite(v) and v > 0 else 1.0 for k, v in ends.items()}
    for ax, column in zip(axes[0], ("iterations", "seconds"), strict=True):
        _target_panel(ax, ok, column, ends[column] * 1.05, colors)
        ax.set_xlabel(say("figures", "time_to_target_xlabel", column, target))
    axes[0, 1].set_yticklabels([])
    figure.suptitle(say("figures", "time_to_target_suptitle", target))
    return figure


def cost_figure(final: pd.DataFrame, colors: dict[str, Any]) -> Figure:
    """Figure 6: training seconds of every run (bars: mean of the ok runs; X: not ok)."""
    figure, axes = figure_grid(height=0.6 * len(colors) + 1.6)
    ax = axes[0, 0]
    timed = final[final["train_s"].notna()]
    ok = timed[timed["status"] == "ok"]
    if len(ok):
        kw = _hue(colors, data=ok, x="train_s", y="schedule", order=list(colors), ax=ax)
        sns.barplot(**kw, dodge=False, errorbar=None, alpha=0.35, width=0.6)
        _strips(**kw, dodge=False, size=6, jitter=0.12, edgecolor="black", linewidth=0.5)
    _crosses(ax, timed[timed["status"] != "ok"], "train_s", colors)
    _categorical_axis(ax, colors)
    ax.set(xlabel=say("figures", "cost_xlabel"))
    ax.set_title(say("figures", "cost_drawn_title"))
    return figure


PER_BATCH = ("learning-rate", "training")  # drawn from the per-batch logs


def build_figures(
    results: Results,
    final: pd.DataFrame,
    reach: pd.DataFrame,
    target: float,
    resolution: int | None = None,
    kept: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every report figure as ``{"name", "title", "caption", "figure"}``, in report order.

    Results without per-batch logs (compact data) keep the per-batch figures as they were
    rendered: ``kept`` gives each by name as ``{"title", "caption", "png"}`` (PNG bytes
    instead of a figure); one that is not kept is left out."""
    colors = palette(results.schedules)
    not_ok = int((results.runs["status"] != "ok").sum())
    if results.batches.empty and len(results.runs):
        given = kept or {}
        shown = [dict(given[n]) | {"name": n} for n in PER_BATCH if n in given]
    else:
        window = smoothing_window(results)
        shown = [
            figure_spec("learning-rate", lr_figure(results, colors)),
            figure_spec(
                "training",
                training_figure(results, colors, window),
                window,
                stats.MIN_SEEDS,
                not_ok,
            ),
        ]
    return shown + [
        figure_spec("test", evaluation_figure(results, colors), stats.MIN_SEEDS, not_ok),
        figure_spec("final-accuracy", final_accuracy_figure(final, colors), not_ok),
        figure_spec(
            "time-to-target",
            target_figure(results, reach, colors, target),
            target,
            resolution,
            not_ok,
        ),
        figure_spec("cost", cost_figure(final, colors)),
    ]


def figure_spec(name: str, figure: Any, *values: Any, prefix: str = "") -> dict[str, Any]:
    """Figure ``name`` (a Figure, or a kept figure's PNG bytes) with its title and caption:
    macros ``<prefix><name>_title`` and ``<prefix><name>_caption`` (called with ``values``) of
    ``templates/words/figures.j2``, ``-`` in ``name`` written ``_``."""
    macro = prefix + name.replace("-", "_")
    return {
        "name": name,
        "title": say("figures", f"{macro}_title"),
        "figure": figure,
        "caption": say("figures", f"{macro}_caption", *values),
    }
