"""The range test over seeds: every seed swept in parallel (joblib loky), then read."""

from __future__ import annotations

import time

from clrbench import quiet
from clrbench.analysis.lrfind import LrFindResult, read_seed, suggest, tidy
from clrbench.config.sweep import SweepSettings
from clrbench.data.load import load_dataset
from clrbench.train.range_test import sweep_seed


def run_lr_find(
    settings: SweepSettings,
    seeds: list[int],
    data_dir: str | None = None,
    jobs: int = 1,
) -> LrFindResult:
    """Sweep every seed (``jobs`` at a time, joblib loky workers) and read the bounds."""
    from joblib import Parallel, delayed

    started = time.perf_counter()
    # Fail on missing data or a bad --train-size here, in one line, not in every worker.
    load_dataset(
        settings.dataset,
        data_dir,
        settings.train_size,
        seed=0,
        validation_size=settings.validation_size,
        split_seed=settings.split_seed,
    )
    sweeps = Parallel(n_jobs=jobs, backend="loky")(
        delayed(sweep_seed)(settings, seed, data_dir, quiet.verbose()) for seed in seeds
    )
    per_seed = [
        {**read_seed(s.frame, settings.window), "wall_s": s.wall_s, "threads": s.threads}
        for s in sweeps
    ]
    return LrFindResult(
        settings=settings,
        data=tidy(sweeps, settings.window),
        per_seed=per_seed,
        suggestion=suggest(per_seed, settings),
        wall_s=time.perf_counter() - started,
        jobs=jobs,
    )
