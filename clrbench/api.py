"""The public Python API: what ``python -m clrbench run`` and ``report`` do, as functions.

``clrbench.run`` trains, ``clrbench.load_results`` reads a results folder as tidy frames,
``clrbench.compare`` is the report's comparison table, ``clrbench.report`` renders a folder's
report. The command line parses its flags and calls these; a notebook calls them directly.
Everything here is imported lazily by ``clrbench/__init__.py``; TensorFlow loads only when
``run`` trains.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clrbench.config.presets import PRESET_HELP, PRESETS
from clrbench.config.resolve import EXPERIMENT_OPTIONS, ConfigSource, check_options
from clrbench.config.sweep import EMIT_EPOCHS
from clrbench.config.workloads import BUILT_IN as WORKLOADS
from clrbench.data.registry import DATASETS
from clrbench.errors import ConfigError, ResultsError, no_results_folder

if TYPE_CHECKING:
    import pandas as pd

    from clrbench.across.workloads import Workloads
    from clrbench.analysis.lrfind import LrFindResult
    from clrbench.config.workload import Workload
    from clrbench.store.results import Results

__all__ = ["catalog", "compare", "export", "load_results", "lr_find", "report", "run"]
# and what the command line's help lists: the presets, built-in workloads, data sets, options
__all__ += ["DATASETS", "EMIT_EPOCHS", "PRESETS", "PRESET_HELP", "RUN_OPTIONS", "WORKLOADS"]
PathLike = str | os.PathLike[str]
# run's own options besides the experiment's (its command-line flags, with underscores)
EXECUTION_OPTIONS = (
    "jobs",
    "data_dir",
    "backend",
    "scheduler",
    "stack",
    "stack_width",
    "force",
    "quiet",
    "no_report",
    "verbose",
    "margin",
)
RUN_OPTIONS = (*EXPERIMENT_OPTIONS, *EXECUTION_OPTIONS)
LR_FIND_OUT = "results/lr-find"  # lr_find's default output folder
DEFAULT_FORMATS = ("html", "md")


def run(
    config: ConfigSource = None, *, out: PathLike | None, **options: Any
) -> Results | Workloads:
    """Train an experiment into a results folder, print its summary, render its report.

    ``config`` is an experiment TOML file (or its mapping); without it the preset
    (``preset="default"``). ``options`` are ``python -m clrbench run``'s own, with
    underscores: ``seeds=5``, ``schedules=["constant", "clr-iter"]``,
    ``workload="mnist1d-mlp"``, ``epochs=2``, ``train_size=3000``, ``jobs=2``,
    ``no_report=True``, ``quiet=True``... ``out=None`` is the command line's default folder,
    ``results/<name>`` (``results/<name>-<workload>`` off mnist-mlp). Several workloads
    (``workload="a,b"``) train one folder each, ``out/<workload>``, render the
    cross-workload report, and give a :class:`~clrbench.across.workloads.Workloads`: each
    workload's results by name, with ``.compare()`` and ``.analysis()`` across them.

    Everything is validated before anything is trained: a bad option is one ConfigError.

    >>> clrbench.run(out=tmp / "never", epochs=0)
    Traceback (most recent call last):
    clrbench.errors.ConfigError: epochs must be a positive integer, got 0
    >>> results = clrbench.run(out=tmp / "r", workload="mnist1d-mlp", epochs=2)  # doctest: +SKIP
    """
    check_options(options, RUN_OPTIONS, "run")
    how = _execution(options)
    from clrbench.config.resolve import output_folders, resolve_experiments
    from clrbench.config.workloads import name_of

    experiments = resolve_experiments(
        config, **{k: v for k, v in options.items() if k in EXPERIMENT_OPTIONS}
    )
    outs, base = output_folders(
        out, experiments[0].name, [name_of(e.workload) for e in experiments]
    )
    plans = _plans(experiments, how, options.get("stack"), options.get("stack_width"))
    from clrbench.suite.session import run_one

    trained = [run_one(plan, folder, how) for plan, folder in zip(plans, outs, strict=True)]
    if len(plans) == 1:
        return trained[0][0]
    if how.report:
        from rich.console import Console

        from clrbench.across.report import render_across

        console = Console(stderr=True, soft_wrap=True, quiet=how.quiet)
        for path in render_across(outs, base / "report", margin_pp=how.margin).values():
            console.print(f"cross-workload report: {path}", markup=False)
    if how.quiet:
        print(base)
    from clrbench.across.workloads import Workloads

    named = {folder.name: results for folder, (results, _) in zip(outs, trained, strict=True)}
    return Workloads(base, named)


def _execution(options: dict[str, Any]):
    """The options of how to run, checked (before any data is read)."""
    from clrbench.suite.session import Execution
    from clrbench.train import quiet

    data_dir, jobs = options.get("data_dir"), options.get("jobs")
    if data_dir and not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir {data_dir}: no such directory")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    from clrbench.analysis.margin import checked_margin_pp

    margin = checked_margin_pp(options.get("margin"))
    if "verbose" in options:
        quiet.set_verbose(bool(options["verbose"]))
    return Execution(
        jobs=jobs,
        backend=options.get("backend") or "loky",
        scheduler=options.get("scheduler"),
        data_dir=str(data_dir) if data_dir else None,
        force=bool(options.get("force")),
        quiet=bool(options.get("quiet")),
        report=not options.get("no_report"),
        margin=margin,
    )


def _plans(experiments, how, stack: bool | None, width: int | None):
    """Every workload's data found and verified, a plug-in's model built, every schedule's
    rates checked: a missing file is one error line, not N failed runs; stacked as asked or
    where measured faster (``clrbench.suite.session.stacking_plan``)."""
    from clrbench.data.load import load_dataset
    from clrbench.suite.session import stacking_plan

    for experiment in experiments:
        load_dataset(experiment.workload.dataset, data_dir=how.data_dir)
        if experiment.workload.is_plugin:
            from clrbench.train.models import check_plugin_model

            check_plugin_model(experiment.workload)
    # stacked or not, settled here, before any writing
    return [stacking_plan(e, stack, width) for e in experiments]


def load_results(path: PathLike, **options: Any) -> Results:
    """A results folder (``run``'s) as tidy frames: ``batches``, ``epochs``, ``evaluations``
    and ``runs`` (one row per run), every run record type-checked as it is read.

    >>> results = clrbench.load_results(results_dir)
    >>> results.schedules
    ['constant', 'clr-iter']
    >>> sorted(results.runs["status"].unique())
    ['ok']
    """
    from clrbench.store.results import load_results as load

    return load(path, **options)


def _results(results_or_path: Results | PathLike) -> Results:
    from clrbench.store.results import Results

    if isinstance(results_or_path, Results):
        return results_or_path
    folder = Path(results_or_path)
    if not folder.is_dir():
        raise no_results_folder(folder)
    return load_results(folder)


def compare(
    results: Results | Workloads | PathLike,
    baseline: str | None = None,
    *,
    margin: float | None = None,
) -> pd.DataFrame:
    """The report's comparison table: each schedule's final test accuracy against
    ``baseline``'s (default ``constant``, else the first schedule) — difference, Welch 95% CI,
    p-values (raw and Holm-adjusted), Hedges' g and the decided outcome (better / worse /
    equivalent within ±margin / undecided) at the workload's margin, or ``margin`` (pp).
    Several workloads (``run``'s :class:`~clrbench.across.workloads.Workloads`, or the folder
    holding them) give the cross-workload report's table: a ``workload`` column first and
    ``p_holm_all``, Holm over every comparison of every workload.

    >>> table = clrbench.compare(results_dir)
    >>> table[["schedule", "baseline", "n", "n_baseline"]].to_dict("records")
    [{'schedule': 'clr-iter', 'baseline': 'constant', 'n': 3, 'n_baseline': 3}]
    >>> table["outcome"].iloc[0] in ("better", "worse", "equivalent", "undecided")
    True
    """
    from clrbench.across.workloads import Workloads, load
    from clrbench.analysis import stats
    from clrbench.analysis.margin import results_margin
    from clrbench.store.results import Results

    if isinstance(results, Workloads):
        return results.compare(baseline, margin)
    if not isinstance(results, Results) and _is_study(Path(results)):
        raise ResultsError(
            f"{results}: a study folder; its comparisons are clrbench.study.load(path).across "
            "(across studies) and .main.comparison (study 0)"
        )
    workloads = None if isinstance(results, Results) else load(Path(results))
    if workloads is not None:
        return workloads.compare(baseline, margin)
    loaded = _results(results)
    return stats.compare(loaded, baseline, results_margin(loaded, margin).value)


def report(
    results_or_path: Results | Workloads | PathLike | Sequence[PathLike],
    out: PathLike | None = None,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    target: float | None = None,
    baseline_schedule: str | None = None,
    margin: float | None = None,
) -> dict[str, Path]:
    """Render a folder's report (HTML + Markdown, no training); returns the files by kind.
    ``margin``: the smallest difference that matters, in pp (default: each workload's own).

    A results folder gives the comparison report, a study folder the study's report, several
    results folders (one per workload), the folder holding them or ``run``'s
    :class:`~clrbench.across.workloads.Workloads` the cross-workload report, several study
    folders (one per workload) their families across workloads
    (``clrbench.across.grid``: grid_across.md and grid_across.json).
    ``out`` defaults to ``<folder>/report`` (required for several folders). Every run report
    writes its compact data beside it (``data/``, ``clrbench.store.compact``), so a rendered
    report folder re-renders in place without the results folder.

    >>> written = clrbench.report(results_dir, out=tmp / "report")
    >>> sorted(written)
    ['csv', 'html', 'md']
    >>> written["md"].read_text().startswith("# clrbench report")
    True
    """
    from clrbench.reporting.page import check_options as check_formats

    formats = check_formats(list(formats), target)  # before any loading
    from clrbench.analysis.margin import checked_margin_pp

    checked_margin_pp(margin)
    from clrbench.across.workloads import Workloads
    from clrbench.store.results import Results

    if isinstance(results_or_path, Workloads):
        return _report_across(
            [results_or_path.path],
            results_or_path.folders,
            out if out is not None else results_or_path.path / "report",
            formats,
            target,
            baseline_schedule,
            margin,
        )
    if isinstance(results_or_path, Results):
        from clrbench.reporting.render import render

        folder = Path(out) if out is not None else results_or_path.path / "report"
        return render(results_or_path, folder, formats, target, baseline_schedule, margin_pp=margin)
    given = (
        [results_or_path]
        if isinstance(results_or_path, str | os.PathLike)
        else list(results_or_path)
    )
    folders = [Path(name) for name in given]
    for folder in folders:
        if not folder.is_dir():
            raise no_results_folder(folder)
    if len(folders) > 1 and all(map(_is_study, folders)):
        return _report_grid_across(folders, out, target, baseline_schedule)
    workloads = _across_folders(folders)
    if workloads is not None:
        return _report_across(folders, workloads, out, formats, target, baseline_schedule, margin)
    folder = folders[0]
    destination = Path(out) if out is not None else default_report_folder(folder)
    if _is_study(folder):
        from clrbench.study.report import render_study

        reason = "a study compares every family with its constant family (else its first)"
        refuse_option("baseline_schedule", baseline_schedule, reason)
        study = _study_dir(folder) or folder
        return render_study(study, destination, formats, target, margin_pp=margin)
    from clrbench.reporting.render import render

    results = load_results(folder)
    return render(results, destination, formats, target, baseline_schedule, margin_pp=margin)


def export(
    results_or_path: Results | PathLike,
    *,
    tensorboard: PathLike | None = None,
    csv: PathLike | None = None,
    mlflow: str | None = None,
    mlflow_experiment: str | None = None,
) -> dict[str, Any]:
    """Write a results folder as TensorBoard scalars (``tensorboard``: a folder, one run per
    ``SCHEDULE/seedN``), CSV (``csv``: the epochs frame, with ``<stem>.batches.csv``,
    ``<stem>.runs.csv`` and ``<stem>.evaluations.csv`` beside it) and/or MLflow runs
    (``mlflow``: a tracking URI; nested under one run for the folder, ``mlflow_experiment``
    default ``clrbench-<experiment name>``). Every input and destination is checked before
    anything is written. Returns what was written: ``tensorboard`` (the run folders), ``csv``
    (the files), ``mlflow`` (the MLflow export's record: parent run, runs added and already
    there) and ``mlflow_experiment``.

    >>> written = clrbench.export(results_dir, csv=tmp / "suite.csv")
    >>> sorted(path.name for path in written["csv"])
    ['suite.batches.csv', 'suite.csv', 'suite.evaluations.csv', 'suite.runs.csv']
    """
    import importlib.util

    from clrbench.store import export as exports

    if not tensorboard and not csv and not mlflow:
        raise ConfigError("export: give --tensorboard DIR, --csv FILE and/or --mlflow URI")
    if mlflow:
        from clrbench.store.mlflow_export import check_tracking_uri, require_mlflow

        check_tracking_uri(mlflow)
        require_mlflow()
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "export: --tensorboard needs the tensorboard package (pip install tensorboard)"
        )
    results = _results(results_or_path)  # a missing folder: one line, before any writing
    if tensorboard:
        exports.check_writable(Path(tensorboard), "folder")
    if csv:
        for path in exports.csv_paths(Path(csv)).values():
            exports.check_writable(path, "file")
    written: dict[str, Any] = {}
    if tensorboard:
        written["tensorboard"] = exports.write_tensorboard(results, Path(tensorboard))
    if csv:
        written["csv"] = exports.write_csv(results, Path(csv))
    if mlflow:
        import logging

        from clrbench.store.mlflow_export import export_mlflow

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its database set-up notices
        name = results.experiment.get("experiment", {}).get("name", results.path.name)
        experiment = mlflow_experiment or f"clrbench-{name}"
        written["mlflow"] = export_mlflow(results, mlflow, experiment)
        written["mlflow_experiment"] = experiment
    return written


def default_report_folder(folder: Path) -> Path:
    """Where a folder's report goes by default: ``<folder>/report``; a rendered report that
    carries its compact data (and no runs) is re-rendered in place."""
    from clrbench.store.compact import holds_compact

    if holds_compact(folder) and not (folder / "runs").is_dir():
        return folder
    if _is_study(folder) and _study_dir(folder) != folder:  # a rendered study report
        return folder
    return folder / "report"


def refuse_option(name: str, value: object, reason: str) -> None:
    """The one rule for an option a kind of report does not take: one line saying why."""
    if value is None:
        return
    flag = flag_of(name)
    kind = {"target": "one workload's report", "baseline_schedule": "a results folder's report"}
    raise ConfigError(f"{flag} is for {kind[name]}; {reason} (drop {flag})")


def flag_of(name: str) -> str:
    """An option as its command-line flag: ``baseline_schedule`` -> ``--baseline-schedule``."""
    return "--" + name.replace("_", "-")


def _is_study(folder: Path) -> bool:
    """A study folder, or a rendered study report that carries its compact data."""
    return _study_dir(folder) is not None


def _study_dir(folder: Path) -> Path | None:
    from clrbench.study.compact import study_folder

    return study_folder(folder)


def _across_folders(folders: list[Path]) -> list[Path] | None:
    """The results folders of a cross-workload report (several folders, or the one folder
    holding them), or None for the report of one results or study folder."""
    from clrbench.across.report import holds_workloads

    if len(folders) == 1:
        if _is_study(folders[0]):
            return None
        return holds_workloads(folders[0]) or None
    for folder in folders:
        if not (folder / "runs").is_dir():
            raise ResultsError(
                f"{folder}: not a results folder (a cross-workload report takes one results "
                "folder per workload)"
            )
    return folders


def _report_grid_across(
    folders: list[Path], out: PathLike | None, target: float | None, baseline: str | None
) -> dict[str, Path]:
    """Several study folders (one per workload): their families across workloads, Kendall's W
    and the performance profile (``clrbench.across.grid``), written to ``out``."""
    from clrbench.across.grid import across_grid, family_scores, write_grid_across
    from clrbench.config.workloads import name_of
    from clrbench.study.report import analyse_study

    reason = "the families of several studies are ranked by their mean test accuracy"
    refuse_option("target", target, reason)
    refuse_option("baseline_schedule", baseline, reason)
    if out is None:
        raise ConfigError("--out is required for the report of several study folders")
    finals: dict[str, list] = {}
    chances: dict[str, float] = {}
    for folder in folders:
        analysis = analyse_study(_study_dir(folder) or folder)
        name = name_of(analysis.config.workload)
        if name in finals:
            raise ResultsError(f"{folder}: workload {name} is also in another study folder")
        finals[name] = [s.metrics for s in analysis.studies if s.metrics is not None]
        chances[name] = analysis.config.workload.chance
    return write_grid_across(across_grid(family_scores(finals, chances)), Path(out))


def _report_across(
    given: list[Path],
    workloads: list[Path],
    out: PathLike | None,
    formats: tuple[str, ...],
    target: float | None,
    baseline_schedule: str | None,
    margin: float | None = None,
) -> dict[str, Path]:
    """The cross-workload report: options checked, then everything loaded and computed
    before anything is written."""
    from clrbench.across.report import compact_workloads, render_across

    reason = "the cross-workload report measures each workload at its own target"
    refuse_option("target", target, reason)

    if out is None and len(given) > 1:
        raise ConfigError("--out is required for the report of several results folders")
    rendered = len(given) == 1 and workloads == compact_workloads(given[0])  # re-render in place
    folder = Path(out) if out is not None else given[0] / ("" if rendered else "report")
    return render_across(workloads, folder, formats, baseline_schedule, margin_pp=margin)


def lr_find(
    *,
    out: PathLike = LR_FIND_OUT,
    seeds: int = 3,
    mode: str = "exp",
    min_lr: float = 1e-4,
    max_lr: float = 10.0,
    steps: int = 500,
    workload: str | None = None,
    dataset: str | None = None,
    train_size: int | None = None,
    optimizer: str = "sgd-momentum",
    data_dir: PathLike | None = None,
    jobs: int | None = None,
    emit_config: PathLike | None = None,
    epochs: int = EMIT_EPOCHS,
    quiet: bool = False,
) -> LrFindResult:
    """The learning-rate range test (Smith 2015) over ``seeds`` seeds: train from fresh
    weights while the rate grows every step, read each batch's own loss, suggest the bounds of
    a cyclical schedule. Writes ``lr_find.json``, ``lr_find.parquet`` and ``lr_find.png`` to
    ``out``; ``emit_config`` (a file) also writes a TOML experiment of cyclical schedules
    between the bounds, ``epochs`` long, that ``clrbench.run(config=...)`` trains.
    The options are ``python -m clrbench lr-find``'s, with underscores; the command prints the
    summary (``quiet=True``: nothing printed). Returns the reading: ``.suggestion`` holds
    ``base_lr`` and ``max_lr``, ``.data`` every step of every seed, ``.summary()`` what
    lr_find.json holds.

    Everything is checked before anything is trained or written: a bad option is one
    ConfigError naming the command line's flag.

    >>> clrbench.lr_find(out=tmp / "never", steps=5)
    Traceback (most recent call last):
    clrbench.errors.ConfigError: --steps must be >= 20, got 5
    >>> found = clrbench.lr_find(out=tmp / "lr", workload="mnist1d-mlp")  # doctest: +SKIP
    >>> found.suggestion["max_lr"]  # doctest: +SKIP
    """
    from clrbench.config.sweep import SweepSettings, check_sweep
    from clrbench.data.load import load_dataset
    from clrbench.suite.lock import folder_lock
    from clrbench.suite.lrfind import print_summary, run_lr_find, write_emitted, write_outputs
    from clrbench.suite.pool import default_jobs

    for flag, value in (("--seeds", seeds), ("--jobs", jobs), ("--epochs", epochs)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    check_sweep(min_lr, max_lr, steps, mode, flag_of)
    for flag, path, expected_dir in (("--out", out, True), ("--emit-config", emit_config, False)):
        if path and Path(path).exists() and Path(path).is_dir() != expected_dir:
            raise ConfigError(f"{flag} {path} is {'a file' if expected_dir else 'a folder'}")
    data = str(data_dir) if data_dir else None
    settings = SweepSettings(
        min_lr=min_lr,
        max_lr=max_lr,
        steps=steps,
        mode=mode,
        workload=_sweep_workload(workload, dataset, train_size, optimizer),
    )
    # Missing data or a bad train_size: one line, before the output folder is touched.
    load_dataset(settings.workload.dataset, data, settings.workload.train_size, seed=0)
    with folder_lock(out, "lr-find"):  # one writer per output folder
        result = run_lr_find(settings, list(range(seeds)), data, default_jobs(jobs, tasks=seeds))
        result.files = write_outputs(result, Path(out))
    if emit_config:
        result.files["config"] = write_emitted(result, epochs, seeds, Path(emit_config))
    if not quiet:
        print_summary(result)
    return result


def _sweep_workload(
    workload: str | None, dataset: str | None, train_size: int | None, optimizer: str
) -> Workload:
    """The sweep's workload: ``workload``'s data, model and batch size (else ``dataset``'s
    data and the dense-512 model), the subset and the optimizer."""
    from clrbench.config.workload import Workload
    from clrbench.config.workloads import named

    if workload is None:
        return Workload(dataset=dataset or "mnist", train_size=train_size, optimizer=optimizer)
    if dataset is not None:
        raise ConfigError("give --workload or --dataset, not both")
    found = named(workload).workload(train_size=train_size, optimizer=optimizer)
    if found.is_plugin:
        from clrbench.train.models import check_plugin_model

        check_plugin_model(found)
    return found


@dataclass(frozen=True)
class Catalog:
    """What ``python -m clrbench list`` shows, as frames: every schedule (``name``,
    ``parameters``, ``doc``, ``origin``), preset (``preset``, ``about``, ``schedules``: its
    labels) and workload (built-in and installed plug-ins: ``workload``, ``about``,
    ``epochs``, ``batch_size``, ``constant_lr``, ``base_lr``, ``max_lr``, ``target``,
    ``margin_pp``; a plug-in that cannot load says why in ``about``)."""

    schedules: pd.DataFrame
    presets: pd.DataFrame
    workloads: pd.DataFrame


def catalog() -> Catalog:
    """The schedules, presets and workloads clrbench knows, plug-ins included.

    >>> found = clrbench.catalog()
    >>> found.schedules.set_index("name").loc["triangular", "parameters"]
    'base_lr, max_lr, step_size'
    >>> float(found.workloads.set_index("workload").loc["mnist1d-mlp", "margin_pp"])
    1.0
    """
    import pandas as pd

    from clrbench.config.workloads import NamedWorkload, named
    from clrbench.data import plugin
    from clrbench.errors import ClrbenchError
    from clrbench.schedules import catalog as schedule_rows

    def installed(name: str) -> NamedWorkload:
        try:
            return named(name)
        except ClrbenchError as error:
            return NamedWorkload(name, "?", "?", 0, 0, None, 0, 0, 0, f"cannot load: {error}")

    schedules = [
        (name, ", ".join(p if default is None else f"{p}={default}" for p, default, _ in params),
         doc, origin)
        for name, params, doc, origin in schedule_rows(keras=True)
    ]  # fmt: skip
    presets = [
        (name, PRESET_HELP[name], ", ".join(f"{s['label']} = {s['name']}" for s in e["schedule"]))
        for name, e in PRESETS.items()
    ]
    found = [*WORKLOADS.values(), *(installed(name) for name in plugin.entry_points())]
    shown = ("about", "epochs", "batch_size", "constant_lr", "base_lr", "max_lr", "target")
    workloads = [
        {"workload": w.name} | {key: getattr(w, key) for key in (*shown, "margin_pp")}
        for w in found
    ]
    return Catalog(
        schedules=pd.DataFrame(schedules, columns=["name", "parameters", "doc", "origin"]),
        presets=pd.DataFrame(presets, columns=["preset", "about", "schedules"]),
        workloads=pd.DataFrame(workloads),
    )
