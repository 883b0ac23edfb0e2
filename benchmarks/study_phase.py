"""A script: a study's tuning phase, alone, as a whole process (``test_bench_wide.py``'s shape b).

The reference study's trials on a workload (``budget`` 16 Sobol trials x 5 families = 80, one
tuning seed, each evaluated on the validation split), planned as ``clrbench study`` plans them
(``clrbench.suite.study.plan_trials``, ``trials_experiment``), trained into OUT through the
ordinary runner with stacking as asked:

    python benchmarks/study_phase.py mnist1d-mlp OUT --stack|--no-stack [--jobs 2] [--epochs N]
"""

from __future__ import annotations

import argparse


def main() -> None:
    from clrbench.config.workloads import named
    from clrbench.data.load import dataset_counts
    from clrbench.study.config import StudyConfig
    from clrbench.study.presets import preset
    from clrbench.study.protocol import plan_trials, trials_experiment
    from clrbench.suite.runner import run_suite

    p = argparse.ArgumentParser()
    p.add_argument("workload")
    p.add_argument("out")
    p.add_argument("--stack", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--stack-width", type=int)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--epochs", type=int, help="shorten every trial (default: the workload's)")
    args = p.parse_args()
    found = named(args.workload)
    config = StudyConfig.from_dict(
        preset("reference", args.epochs, found, dataset_counts(found.dataset)[0])
    )
    experiment = trials_experiment(config, plan_trials(config))
    outcome = run_suite(
        experiment,
        args.out,
        jobs=args.jobs,
        force=True,
        stack=args.stack,
        stack_width=args.stack_width,
    )
    print(f"{outcome.trained} trials trained, {len(outcome.failed)} failed")


if __name__ == "__main__":
    main()
