"""The range test's figure: loss and accuracy against the rate, per seed, bounds marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clrbench.analysis.lrfind import LrFindResult, smooth
from clrbench.config.sweep import VALLEY_FACTOR
from clrbench.reporting import page


def plot(result: LrFindResult, path: Path) -> Any:
    """Loss (raw, smoothed, mean) and accuracy against the rate on a log axis, bounds marked;
    written to ``path`` (a PNG, atomically) and returned (a matplotlib Figure)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(10, 8), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    colors = [f"C{i % 10}" for i in range(len(result.per_seed))]
    for color, (seed, rows) in zip(colors, result.data.groupby("seed"), strict=True):
        lr = rows["lr"]
        loss_axes.plot(lr, rows["loss"], color=color, lw=0.6, alpha=0.3)
        loss_axes.plot(lr, rows["smoothed_loss"], color=color, lw=1.3, label=f"seed {seed}")
        accuracy_axes.plot(lr, rows["accuracy"], color=color, lw=0.6, alpha=0.3)
        smoothed = smooth(rows["accuracy"].to_numpy(), result.settings.window)
        accuracy_axes.plot(lr, smoothed, color=color, lw=1.3)
    mean = result.data.pivot(index="step", columns="seed", values=["lr", "smoothed_loss"])
    mean = mean.dropna()  # steps every seed reached
    mean_loss = mean["smoothed_loss"].mean(axis=1)
    loss_axes.plot(mean["lr"].iloc[:, 0], mean_loss, color="black", lw=2.2, label="mean of seeds")
    for axes in (loss_axes, accuracy_axes):
        _mark_bounds(axes, result.suggestion, label=axes is loss_axes)
    _mark_valley(loss_axes, result.suggestion)
    top = 1.25 * max(r["initial_loss"] for r in result.per_seed)
    loss_axes.set(ylim=(0, top), ylabel="training loss (per batch)", xscale="log")
    loss_axes.set_title(_title(result), fontsize=11)
    # below the panels: inside, any corner covers some seed's curve on some sweep
    handles, labels = loss_axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    accuracy_axes.set(ylim=(0, 1.02), ylabel="accuracy (per batch)", xlabel="learning rate")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(True, which="major", alpha=0.3)
    page.write_figure(figure, path, dpi=120)
    return figure


def _mark_bounds(axes: Any, suggestion: dict[str, Any], label: bool) -> None:
    base, peak, divergence = (suggestion[k] for k in ("base_lr", "max_lr", "divergence_lr"))
    text = f"suggested base_lr {base:g} .. max_lr {peak:g}" if label else None
    axes.axvspan(base, peak, color="tab:green", alpha=0.15, label=text)
    if divergence is not None:
        text = f"median divergence {divergence:.2g}" if label else None
        axes.axvline(divergence, color="tab:red", ls="--", lw=1.5, label=text)


def _mark_valley(axes: Any, suggestion: dict[str, Any]) -> None:
    low, high, loss = (suggestion[k] for k in ("valley_low_lr", "valley_high_lr", "valley_loss"))
    text = f"valley (loss < {VALLEY_FACTOR:g}x min) {low:.2g} .. {high:.2g}: max_lr = its centre"
    axes.plot([low, high], [loss, loss], color="0.2", lw=2, marker="|", ms=16, label=text)


def _title(result: LrFindResult) -> str:
    s, w = result.settings, result.settings.workload
    size = "all" if w.train_size is None else f"{w.train_size}"
    return (
        f"LR range test: {w.dataset} ({size} training images), {w.optimizer}, batch {w.batch_size}"
        f"\n{s.mode} sweep {s.min_lr:g} \u2192 {s.max_lr:g} over {s.steps} steps, "
        f"{len(result.per_seed)} seeds; faint: each batch's own loss, bold: centred median "
        f"of {s.window} steps"
    )
