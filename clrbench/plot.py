"""Figures of a results folder in seaborn's style: tidy frames in, the Axes out.

Each function draws one line per ``hue`` value (``schedule`` by default; ``seed`` or any
column of the frame also work), the mean over the other runs with their spread (``errorbar``,
seaborn's), against the optimizer step. ``per="batch"`` draws every step's own value (the
rate applied, the batch's loss or accuracy), ``per="epoch"`` the epoch ends (for loss and
accuracy, on ``split="test"`` or ``"train"``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from clrbench.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from clrbench.store.results import Results

__all__ = ["accuracy", "loss", "lr"]
PERS = ("batch", "epoch")
SPLITS = ("test", "train")


def _frame(results: Results | str | os.PathLike[str], per: str):
    from clrbench.api import _results

    if per not in PERS:
        raise ConfigError(f"per must be one of {', '.join(PERS)}, got {per!r}")
    loaded = _results(results)
    return loaded.batches if per == "batch" else loaded.epochs


def _draw(frame, y: str, hue: str, ax: Axes | None, ylabel: str, **kwargs: Any) -> Axes:
    import seaborn as sns

    if hue not in frame.columns:
        raise ConfigError(f"hue {hue!r} is not a column ({', '.join(frame.columns)})")
    kwargs.setdefault("errorbar", "sd")
    axes = sns.lineplot(data=frame, x="step", y=y, hue=hue, ax=ax, **kwargs)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel(ylabel)
    return axes


def _column(metric: str, per: str, split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return metric if per == "batch" else f"{split}_{metric}"


def lr(
    results: Results | str | os.PathLike[str],
    *,
    per: str = "batch",
    hue: str = "schedule",
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """The learning rate each schedule applies, against the step (``per="epoch"``: at the
    epoch ends). ``kwargs`` go to :func:`seaborn.lineplot`.

    >>> ax = clrbench.plot.lr(results_dir)
    >>> ax.get_ylabel(), sorted(t.get_text() for t in ax.get_legend().get_texts())
    ('learning rate', ['clr-iter', 'constant'])
    """
    return _draw(_frame(results, per), "lr", hue, ax, "learning rate", **kwargs)


def loss(
    results: Results | str | os.PathLike[str],
    *,
    per: str = "epoch",
    split: str = "test",
    hue: str = "schedule",
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """The loss against the step: per epoch on ``split`` (``test`` or ``train``), or every
    batch's own (``per="batch"``).

    >>> ax = clrbench.plot.loss(results_dir, per="epoch", split="train")
    >>> ax.get_ylabel()
    'train loss'
    """
    label = "batch loss" if per == "batch" else f"{split} loss"
    frame = _frame(results, per)
    return _draw(frame, _column("loss", per, split), hue, ax, label, **kwargs)


def accuracy(
    results: Results | str | os.PathLike[str],
    *,
    per: str = "epoch",
    split: str = "test",
    hue: str = "schedule",
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """The accuracy against the step: per epoch on ``split`` (``test`` or ``train``), or
    every batch's own (``per="batch"``).

    >>> ax = clrbench.plot.accuracy(results_dir, hue="schedule")
    >>> ax.get_ylabel(), len(ax.get_lines()) >= 2
    ('test accuracy', True)
    """
    label = "batch accuracy" if per == "batch" else f"{split} accuracy"
    frame = _frame(results, per)
    return _draw(frame, _column("accuracy", per, split), hue, ax, label, **kwargs)
