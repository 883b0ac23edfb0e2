"""The lr-find sweep's training: one seed under the growing rate, on the lean loop, stopped by
the caller's stop hook once the loss diverges.

The sweep trains the workload's model with the workload's optimizer on full, seeded-shuffled
batches (a fresh permutation per pass over the training set, the last partial batch dropped),
``CHECK_EVERY`` steps per compiled call (:func:`clrbench.train.loop.train_steps`). After each
call the losses so far go to ``stop``; the reading's own divergence rule
(``clrbench.analysis.lrfind.diverged``) is the hook ``lr-find`` passes, so the sweep stops where
the reading says it diverged. It never evaluates: the reading needs only the batches' own loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clrbench.config.sweep import CHECK_EVERY, SweepSettings
from clrbench.data.load import load_dataset
from clrbench.train import models, quiet
from clrbench.train.batch_log import LOG_COLUMNS


@dataclass
class SeedSweep:
    """One seed's per-step log and what the sweep cost."""

    frame: pd.DataFrame  # seed, step, lr, loss, accuracy
    wall_s: float
    threads: dict[str, int]


def sweep_batches(examples: int, batch_size: int, seed: int) -> Callable[[int], np.ndarray]:
    """``order(chunk)``: the example indices of chunk ``chunk``'s ``CHECK_EVERY`` full batches,
    from seeded permutations of the training set, one pass after another."""
    rng = np.random.default_rng(seed)
    per_pass = examples // batch_size * batch_size  # full batches only
    wanted = CHECK_EVERY * batch_size
    buffer = np.empty(0, dtype=np.int32)

    def order(chunk: int) -> np.ndarray:
        nonlocal buffer
        while len(buffer) < wanted:
            buffer = np.concatenate([buffer, rng.permutation(examples)[:per_pass]])
        batch, buffer = buffer[:wanted], buffer[wanted:]
        return batch.astype(np.int32)

    return order


def sweep_seed(
    settings: SweepSettings,
    seed: int,
    stop: Callable[[np.ndarray], bool],
    data_dir: str | None = None,
    verbose: bool = False,
) -> SeedSweep:
    """Train one seed under the range-test schedule until ``settings.steps`` steps or until
    ``stop(losses so far)`` says it diverged; the per-step log up to where it stopped."""
    quiet.set_verbose(verbose)
    quiet.import_tensorflow()  # before Keras imports it: a loky worker's start-up lines hidden
    import keras

    from clrbench.train.loop import train_steps
    from clrbench.train.run import configure_tensorflow
    from clrbench.train.workload import build_optimizer

    started = time.perf_counter()
    threads = configure_tensorflow(settings.workload.threads)
    workload = settings.workload
    data = load_dataset(
        workload.dataset,
        data_dir,
        workload.train_size,
        seed=0,
        validation_size=workload.validation_size,
        split_seed=workload.split_seed,
    )
    task = models.resolve(workload)
    x, y = task.preprocess(data.x_train), data.y_train.astype(np.int32)
    keras.backend.clear_session()
    model = task.build_model(x.shape[1:], seed)
    optimizer = build_optimizer(
        workload.optimizer, settings.schedule.keras(), workload.weight_decay
    )
    rows = train_steps(
        model,
        optimizer,
        (x, y),
        batch_size=workload.batch_size,
        chunk=CHECK_EVERY,
        chunks=-(-settings.steps // CHECK_EVERY),
        order=sweep_batches(len(y), workload.batch_size, seed),
        stop=lambda log: stop(log[: settings.steps, LOG_COLUMNS.index("loss")]),
        task=task,
    )[: settings.steps]
    frame = pd.DataFrame(rows[:, :3], columns=["lr", "loss", "accuracy"])
    frame.insert(0, "step", np.arange(len(frame), dtype=np.int64))
    frame.insert(0, "seed", np.int32(seed))
    return SeedSweep(frame, time.perf_counter() - started, threads)
