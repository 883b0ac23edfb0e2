"""The in-graph batch log: each batch's own rate, loss, accuracy and size, written by the
trainer's compiled step and read once per epoch (see ``clrbench.train.run``), and the run's
divergence rule applied to it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

# The in-graph batch log: one row per step of the epoch, these values in this order. (The
# stored per-batch table, clrbench.store.results.BATCH_COLUMNS, is built from it.)
LOG_COLUMNS = ("lr", "loss", "accuracy", "batch_size")
# A run's divergence rule (the one owner: first_divergent applies it): a run is ``diverged`` at
# the first step whose batch loss is not finite or exceeds 10x the run's first batch loss (the
# loss of the untrained model, ~ln 10), or whose update leaves a non-finite weight. The bound
# comes from measured runs (constant rate, full MNIST, 2 epochs): at rates 0.05-1.0 no batch loss
# ever exceeded 1.95x the first (0.5: 1.26x; 1.0: 1.94x, ending at 50% test accuracy); at 2.0 the
# loss rose to 26x and the run ended at chance (10%), at 5.0 to 504x, at 50 to 1.1e9x. (lr-find's
# sweep climbs into divergence on purpose and has its own rule: config/sweep.py.)
DIVERGENCE_FACTOR = 10.0
# The per-epoch row's metrics, as each trainer measures them (test_* may be validation: see
# Workload.evaluate_on, and the epochs frame's evaluated_on column).
EPOCH_METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def first_divergent(
    losses: np.ndarray, first_loss: float, factor: float = DIVERGENCE_FACTOR
) -> int | None:
    """Index of the first loss that is non-finite or above ``factor * first_loss``."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(losses) | (losses > factor * first_loss)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


class EpochLog:
    """Reads each epoch's batch log into tidy frames and epoch rows, and applies the divergence
    rule; both trainers (``clrbench.train.loop`` and Keras ``fit``) feed it once per epoch.

    Times (``time_s``) are seconds of training: the sum of the epochs' training windows, the
    compiled calls that update the model. Evaluation and the work between epochs are not
    training and are left out, so a schedule's time to a target does not depend on how often
    it is evaluated. ``t0`` is when training began (the run record's ``setup_s`` ends there).
    """

    def __init__(
        self,
        steps_per_epoch: int,
        t0: float,
        on_epoch: Callable | None,
        divergence_factor: float = DIVERGENCE_FACTOR,
    ):
        self.steps_per_epoch = steps_per_epoch
        self.divergence_factor = divergence_factor
        self.t0 = t0
        self.on_epoch = on_epoch
        self.batch_frames: list[pd.DataFrame] = []
        self.epoch_rows: list[dict[str, Any]] = []
        self.diverged_step: int | None = None
        self.first_loss = math.nan
        self.trained_s = 0.0  # seconds inside the training windows of the epochs added so far
        self.evaluation_rows: list[dict[str, Any]] = []  # every evaluation, the epochs' ends too

    def add(
        self,
        epoch: int,
        log: np.ndarray,
        windows: Sequence[tuple[float, float]],
        metrics: dict[str, float],
        finite: Callable[[], bool],
        within: Sequence[tuple[int, float, float]] = (),
    ) -> bool:
        """Record epoch ``epoch``: its batch log (rows of LOG_COLUMNS), the ``(start, end)``
        of each compiled call that trained it (one, or one more than its evaluations
        ``within``: ``(steps done, loss, accuracy)``), its train/test ``metrics``, and
        ``finite()``: whether the weights are all finite (asked only when no loss crossed the
        bound). True when the run diverged; evaluations after the diverged step are dropped."""
        if epoch == 0:
            self.first_loss = float(log[0, 1])
        bad = first_divergent(log[:, 1], self.first_loss, self.divergence_factor)
        if bad is None and not finite():
            bad = len(log) - 1  # the epoch's last update broke the weights
        if bad is not None:
            log = log[: bad + 1]
            self.diverged_step = epoch * self.steps_per_epoch + bad
        # training seconds at each call's end, and the steps of the epoch done by then
        done = [0, *(steps for steps, _, _ in within), self.steps_per_epoch]
        clock = self.trained_s + np.cumsum([0.0, *(end - began for began, end in windows)])
        frame = self._batch_frame(epoch, log, np.interp(np.arange(1, len(log) + 1), done, clock))
        self.trained_s = float(clock[-1])
        self.batch_frames.append(frame)
        first = epoch * self.steps_per_epoch
        for (steps, loss, accuracy), seconds in zip(within, clock[1:-1], strict=True):
            if steps <= len(log):
                self._evaluated(epoch, first + steps - 1, loss, accuracy, float(seconds))
        self.epoch_rows.append(
            {
                "epoch": epoch,
                "step": frame["step"].iloc[-1],
                "lr": frame["lr"].iloc[-1],
                **{key: metrics.get(key, np.nan) for key in EPOCH_METRICS},
                "time_s": self.trained_s,
            }
        )
        row = self.epoch_rows[-1]
        self._evaluated(epoch, row["step"], row["test_loss"], row["test_accuracy"], row["time_s"])
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, self.epoch_rows[-1])
        return bad is not None

    def _evaluated(self, epoch: int, step: int, loss: float, accuracy: float, seconds: float):
        self.evaluation_rows.append(
            {
                "epoch": epoch,
                "step": step,
                "test_loss": loss,
                "test_accuracy": accuracy,
                "time_s": seconds,
            }
        )

    def _batch_frame(self, epoch: int, log: np.ndarray, seconds: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "epoch": np.full(len(log), epoch, dtype=np.int32),
                "step": epoch * self.steps_per_epoch + np.arange(len(log), dtype=np.int64),
                "lr": log[:, 0],
                "loss": log[:, 1],
                "accuracy": log[:, 2],
                "batch_size": log[:, 3].astype(np.int32),
                "time_s": seconds,
            }
        )


def weights_finite(model) -> bool:
    """Whether every weight of ``model`` is finite (a diverged update can break them)."""
    return all(np.isfinite(w).all() for w in model.get_weights())
