"""A study: equal tuning budgets per schedule family, selection on validation only (the best
trials confirmed on fresh seeds, a sensitivity sweep around each winner whose better multiplier is
re-checked), then re-runs of the winners on test, and Smith's zero-budget arm; ``studies`` times
over, each an independent tuning (``StudyConfig.draw``).

Every training run is an ordinary run of the results store, trained by the ordinary runner
(``clrbench.suite.runner.run_suite``: parallel, resumable, loky or Dask), in one results folder per
phase; the study's own state (the split, the trials, the winners, the lr-find bounds, what each
phase trained) is ``STUDY/study.json``, rewritten after every phase. Layout::

    STUDY/study.toml        the resolved study configuration
    STUDY/study.json        the state: split, lr-find bounds, per study its trials, candidates,
                            winners, sensitivity check and phases
    STUDY/lr-find/          the range test on the train split (zero-budget arm)
    STUDY/trials/           budget x families runs, one tuning seed, evaluated on validation
    STUDY/confirm/          the best confirm_top trials per family, confirm_seeds seeds, validation
    STUDY/sensitivity/      each winner with all rates x 2^k, evaluated on validation
    STUDY/recheck/          a multiplier the sweep found better beyond noise, confirmation seeds
    STUDY/final/            winners + zero-budget arm, fresh seeds, evaluated on test
    STUDY/study-<i>/        study i >= 1 of --studies N: its trials/ confirm/ sensitivity/
                            recheck/ final/ (study 0 is the folder itself, so a one-study folder
                            is study 0 of a repeated one and keeps its runs)
    STUDY/report/           report.html, report.md, summary.json, figures/

Only ``final/`` is ever evaluated on the test set, and it is trained after every choice is made.
Re-running the same command resumes: the plan is a pure function of the configuration, so
complete runs keep their ids and are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from clrbench.config.experiment import Experiment, Plan
from clrbench.data.load import load_dataset
from clrbench.data.split import split_record
from clrbench.store import atomic
from clrbench.store.records import RunRecord
from clrbench.store.results import load_results
from clrbench.study.config import StudyConfig, entry_for, octave_label
from clrbench.study.select import Choice, choose
from clrbench.study.space import scale_rates, sobol_points
from clrbench.study.state import DrawState, StudyState, write_state
from clrbench.suite.lock import folder_lock
from clrbench.suite.lrfind import (
    HALF_CYCLE_EPOCHS,  # the zero-budget cycle, sized as --emit-config does
)


@dataclass(frozen=True)
class Trial:
    """One sampled configuration of a family."""

    family: str
    index: int
    label: str
    point: tuple[float, ...]  # its Sobol coordinates in the unit cube
    params: dict[str, Any] = field(hash=False)


def plan_trials(config: StudyConfig) -> list[Trial]:
    """``budget`` Sobol trials per family, in family order (a pure function of the config)."""
    spe, total = config.lengths()
    width = len(str(config.budget - 1))
    trials = []
    for family in config.families:
        points = sobol_points(len(family.ranged), config.budget, config.sampling_seed, family.label)
        for index, point in enumerate(points):
            label = f"{family.label}-t{index:0{width}d}"
            params = family.resolve(point, spe, total)
            trials.append(Trial(family.label, index, label, tuple(map(float, point)), params))
    return trials


def trials_experiment(config: StudyConfig, trials: list[Trial]) -> Experiment:
    """Every trial once, with the tuning seed, evaluated on the validation split."""
    families = {f.label: f for f in config.families}
    entries = tuple(entry_for(families[t.family], t.label, t.params) for t in trials)
    return config.experiment("validation", (config.tuning_seed,), entries, "trials")


def sensitivity_experiment(config: StudyConfig, winners: dict[str, dict]) -> Experiment:
    """Each winner with all its rates scaled by 2^k, k in ``octaves``, on validation."""
    families = {f.label: f for f in config.families}
    entries = tuple(
        entry_for(
            families[name], octave_label(name, k), scale_rates(families[name].name, params, 2.0**k)
        )
        for name, params in winners.items()
        for k in config.octaves
    )
    seeds = config.draw_seeds(0)["sensitivity"]
    return config.experiment("validation", seeds, entries, "sensitivity")


def confirm_experiment(config: StudyConfig, chosen: dict[str, list[dict]]) -> Experiment:
    """Each candidate trial again under its label, on the confirmation seeds, on validation."""
    families = {f.label: f for f in config.families}
    entries = tuple(
        entry_for(families[family], c["label"], c["params"])
        for family, group in chosen.items()
        for c in group
    )
    return config.experiment("validation", config.draw_seeds(0)["confirmation"], entries, "confirm")


def recheck_experiment(config: StudyConfig, rechecks: dict[str, dict]) -> Experiment:
    """The multipliers the sweep found better beyond noise, on the confirmation seeds."""
    families = {f.label: f for f in config.families}
    entries = tuple(
        entry_for(families[family], c["label"], c["params"]) for family, c in rechecks.items()
    )
    return config.experiment("validation", config.draw_seeds(0)["confirmation"], entries, "recheck")


def zero_budget_params(config: StudyConfig, bounds: dict[str, float]) -> dict[str, dict]:
    """Smith's recipe from lr-find's bounds: a triangular cycle between them (half cycles of
    about 4 epochs, the run ending at the end of a cycle), and a constant rate at the triangle's
    mean rate (lr-find's own emitted experiment does the same)."""
    from clrbench.analysis.lrfind import round_significant

    spe, total = config.lengths()
    cycles = max(1, round(total / (2 * HALF_CYCLE_EPOCHS * spe)))
    base, peak = bounds["base_lr"], bounds["max_lr"]
    return {
        "lr-find-clr": {"base_lr": base, "max_lr": peak}
        | {"step_size": max(1, round((total - 1) / (2 * cycles)))},
        "lr-find-constant": {"lr": round_significant((base + peak) / 2)},
    }


def final_experiment(
    config: StudyConfig, winners: dict[str, dict], bounds: dict[str, float] | None
) -> Experiment:
    """The winners under their family labels (+ the zero-budget arm), fresh seeds, on test."""
    from clrbench.config.runs import ScheduleEntry

    families = {f.label: f for f in config.families}
    entries = [entry_for(families[name], name, params) for name, params in winners.items()]
    if bounds is not None:
        zero = zero_budget_params(config, bounds)
        entries.append(
            ScheduleEntry(
                "lr-find-clr", "triangular", params=tuple(sorted(zero["lr-find-clr"].items()))
            )
        )
        entries.append(
            ScheduleEntry(
                "lr-find-constant", "constant", params=tuple(zero["lr-find-constant"].items())
            )
        )
    seeds = tuple(range(config.first_seed, config.first_seed + config.seeds))
    return config.experiment("test", seeds, tuple(entries), "final")


# --- state ---


def _write_config(config: StudyConfig, out: Path) -> None:
    atomic.write_text(out / "study.toml", tomli_w.dumps(config.to_dict()))


# --- running ---


@dataclass
class StudyOutcome:
    """What a study did: its folder, state, and per phase the runs trained / kept / failed."""

    out: Path
    state: StudyState
    trained: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    failed: list[RunRecord] = field(default_factory=list)


@dataclass
class Runner:
    """How the phases train: the runner's options and a progress display per phase."""

    jobs: int | None = None
    backend: str = "loky"
    scheduler: str | None = None
    data_dir: str | None = None
    progress: Callable[[str, Experiment], Any] | None = None  # -> SuiteProgress-like
    stack: bool | None = None  # None: auto (clrbench.suite.devices.choose_stack)
    stack_width: int | None = None
    say: Callable[[str], None] = lambda message: None


def split_of(config: StudyConfig, data_dir: str | None) -> dict[str, Any]:
    """The study's split, recorded: seed, sizes, SHA-256 of the validation indices (and the data
    is found and verified here, before anything trains)."""
    workload = config.workload
    data = load_dataset(workload.dataset, data_dir=data_dir)
    record = split_record(data.y_train, workload.validation_size or 0, workload.split_seed)
    return record | {"dataset": workload.dataset, "dataset_md5": data.checksums}


def run_phase(
    name: str,
    experiment: Experiment,
    out: Path,
    runner: Runner,
    outcome: StudyOutcome,
    phases: dict[str, Any],
) -> None:
    """One phase through the ordinary runner into ``out/name`` (its own folder, its own lock),
    recorded in ``phases`` (its study's) and the state written."""
    from clrbench.suite.runner import run_suite

    plan = phase_plan(experiment, runner)
    choice = plan.stacking
    if compact_phase(out / name, plan.run_ids):
        runner.say(f"{name}: {len(plan.runs)} runs kept from the compact data in {out / name}")
        outcome.skipped[name] = outcome.skipped.get(name, 0) + len(plan.runs)
        phases[name] = {"runs": len(plan.runs), "trained": 0, "kept": len(plan.runs)}
        phases[name] |= {"failed": 0, "compact": True, "done": True}
        write_state(outcome.out, outcome.state)
        return
    stacking = f"stacked: {choice.reason}" if choice and choice.on else "separate"
    runner.say(f"{name}: {len(plan.runs)} runs ({stacking}) -> {out / name}")
    progress = runner.progress(name, experiment) if runner.progress else None
    try:
        result = run_suite(
            plan,
            out / name,
            jobs=runner.jobs,
            backend=runner.backend,
            scheduler=runner.scheduler,
            data_dir=runner.data_dir,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.stop()
    outcome.trained[name] = outcome.trained.get(name, 0) + result.trained
    outcome.skipped[name] = outcome.skipped.get(name, 0) + result.skipped
    outcome.failed += result.failed
    phases[name] = {
        "runs": len(plan.runs),
        "trained": result.trained,
        "kept": result.skipped,
        "failed": len(result.failed),
        "done": True,
    }
    write_state(outcome.out, outcome.state)


def phase_plan(experiment: Experiment, runner: Runner) -> Plan:
    """A phase's plan: stacked where measured faster (a GPU; mnist1d-mlp on a CPU) or as the
    runner asks, whatever the phase (a stacked run has an id of its own)."""
    from clrbench.config.workloads import name_of
    from clrbench.suite.devices import choose_stack

    choice = choose_stack(runner.stack, name_of(experiment.workload), runner.stack_width)
    return experiment.plan(stack=choice)


# what may change when a study is extended from its compact data: how many studies, how to stop
EXTENSIBLE = ("studies", "until_decided", "max_studies")


def check_extension(config: StudyConfig, out: Path, trials: list[list[str]]) -> None:
    """A study folder that holds compact data (a copy of a report's ``data/``) is extended
    only with the configuration that rendered it, but for the number of studies, and only if
    each kept study's trials are the runs this code plans (``trials``: each study's run ids;
    a run id is its configuration, its stacking and the training semantics): else one error
    line, before anything in it is written."""
    import tomllib

    from clrbench.errors import ConfigError

    if not _compact_only(out / "trials"):
        return
    try:
        held = tomllib.loads((out / "study.toml").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{out}: holds compact data but no readable study.toml ({exc})") from None
    given = json.loads(json.dumps(config.to_dict()))  # TOML's types, as read back
    held, given = _flat(held), _flat(given)
    changed = sorted(key for key in set(held) | set(given) if held.get(key) != given.get(key))
    changed = [key for key in changed if key.removeprefix("study.") not in EXTENSIBLE]
    if changed:
        raise ConfigError(
            f"{out}: holds the compact data of a study with another configuration "
            f"({', '.join(changed)} {'differs' if len(changed) == 1 else 'differ'}); extend it "
            "with its own study.toml "
            f"(--config {out / 'study.toml'} --studies N)"
        )
    for i, run_ids in enumerate(trials):
        compact_phase(study_folder(out, i) / "trials", run_ids)  # raises if it holds others


def _flat(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A TOML document's settings by dotted name (a list of tables, the families, is one)."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _compact_only(folder: Path) -> bool:
    """A phase folder holding compact data and no trained runs (a copy of a report's data)."""
    from clrbench.store.compact import holds_compact

    return holds_compact(folder) and not (folder / "runs").is_dir()


def compact_phase(folder: Path, run_ids: list[str]) -> bool:
    """Whether a phase is already done as compact data: a study extended from a report's
    ``data/`` (``cp -r reports/NAME/data results/NAME``, then ``study --studies N``) keeps
    the studies it holds and trains only the new ones. The compact data must hold exactly the
    runs this phase plans (a run id is its configuration and the training semantics), else
    one error line: nothing is mixed with runs another code or configuration trained."""
    from clrbench.errors import ResultsError

    if not _compact_only(folder):
        return False
    held = set(load_results(folder).runs["run_id"].astype(str))
    if held != set(run_ids):
        missing, other = len(set(run_ids) - held), len(held - set(run_ids))
        raise ResultsError(
            f"{folder}: its compact data holds other runs than this phase plans ({missing} "
            f"planned runs missing, {other} runs not planned): the code or the configuration "
            "changed since it was rendered; extend a study only with the code and study.toml "
            "that rendered it"
        )
    return True


def trial_records(trials: list[Trial]) -> list[dict[str, Any]]:
    return [
        {"family": t.family, "index": t.index, "label": t.label, "point": list(t.point)}
        | {"params": t.params}
        for t in trials
    ]


def lr_find_phase(config: StudyConfig, out: Path, runner: Runner) -> dict[str, Any]:
    """Smith's range test on the train split (never the validation or test set); a previous
    sweep with the same settings and seeds is reused. Returns its suggestion."""
    from clrbench.config.sweep import SweepSettings
    from clrbench.suite.lrfind import run_lr_find, write_outputs

    settings = SweepSettings(steps=config.lr_find_steps, workload=config.workload)
    seeds = list(range(config.tuning_seed, config.tuning_seed + config.lr_find_seeds))
    folder = out / "lr-find"
    previous = _previous_sweep(folder, settings, seeds)
    if previous is not None:
        runner.say(f"lr-find: reusing {folder / 'lr_find.json'}")
        return previous
    runner.say(
        f"lr-find: {len(seeds)} seeds x {settings.steps} steps on the train split -> {folder}"
    )
    result = run_lr_find(settings, seeds, runner.data_dir, jobs=min(len(seeds), runner.jobs or 1))
    write_outputs(result, folder)
    return result.summary()


def _previous_sweep(folder: Path, settings: Any, seeds: list[int]) -> dict[str, Any] | None:
    try:
        summary = json.loads((folder / "lr_find.json").read_text())
    except (OSError, ValueError):
        return None
    same = summary.get("sweep") == json.loads(json.dumps(settings.to_dict()))
    return summary if same and summary.get("seeds") == seeds else None


def run_study(config: StudyConfig, out: str | os.PathLike[str], runner: Runner) -> StudyOutcome:
    """Every phase in order, each resumable, with ``out`` locked (BusyError if another writer
    has it); a command that holds the lock already (``study``: through its report) calls
    :func:`study_locked`."""
    out = Path(out)
    with folder_lock(out, "study"):
        return study_locked(config, out, runner)


def study_folder(out: Path, study: int) -> Path:
    """Where study ``study``'s phases live: study 0 in the study folder itself, study i >= 1 in
    ``STUDY/study-<i>``."""
    return out if study == 0 else out / f"study-{study}"


def draw_record(config: StudyConfig, study: int, trials: list[Trial]) -> DrawState:
    """Study ``study``'s part of the state before it trains: its seeds and planned trials."""
    draw = config.draw(study)
    seeds = {"sampling_seed": draw.sampling_seed} | {
        k: list(v) for k, v in config.draw_seeds(study).items()
    }
    seeds["final"] = list(config.final_seeds(study))
    folder = "." if study == 0 else f"study-{study}"
    return DrawState(index=study, folder=folder, seeds=seeds, trials=trial_records(trials))


def study_locked(
    config: StudyConfig, out: Path, runner: Runner, margin_pp: float | None = None
) -> StudyOutcome:
    """:func:`run_study` for a caller that holds ``out``'s lock: the state is written after
    every phase, by this one writer. With ``until_decided`` the studies stop once every family
    is decided under the sequential rule (at the workload's margin, or ``margin_pp``); the
    state then keeps only the studies that ran."""
    draws = [config.draw(i) for i in range(config.studies)]
    plans = [plan_trials(draw) for draw in draws]
    # every trial of every study validated before any training
    experiments = [trials_experiment(d, p) for d, p in zip(draws, plans, strict=True)]
    state = StudyState(
        name=config.name,
        split=split_of(config, runner.data_dir),
        studies=[draw_record(config, i, p) for i, p in enumerate(plans)],
    )
    trial_plans = [phase_plan(e, runner).run_ids for e in experiments]
    check_extension(config, out, trial_plans)  # before anything is written
    _write_config(config, out)
    outcome = StudyOutcome(out=out, state=state)
    write_state(out, state)
    bounds = None
    if config.zero_budget:
        summary = lr_find_phase(config, out, runner)
        bounds = {"base_lr": summary["base_lr"], "max_lr": summary["max_lr"]}
        state.lr_find = bounds | {"seeds": summary["seeds"], "warnings": summary["warnings"]}
        state.phases["lr-find"] = {"done": True}
        write_state(out, state)
    for i, (draw, experiment) in enumerate(zip(draws, experiments, strict=True)):
        if config.studies > 1:
            runner.say(f"study {i} of {config.studies}")
        record = state.studies[i]
        run_draw(draw, experiment, study_folder(out, i), runner, outcome, record, bounds)
        bounds = None  # the zero-budget arm is not tuned: it trains once, with study 0
        if (
            config.until_decided
            and i + 1 < config.studies
            and decided(config, out, state, i, margin_pp)
        ):
            runner.say(f"every family decided after {i + 1} studies: stopping (--until-decided)")
            state.studies = state.studies[: i + 1]
            write_state(out, state)
            break
    return outcome


def decided(
    config: StudyConfig, out: Path, state: StudyState, last: int, margin_pp: float | None
) -> bool:
    """Whether studies 0..``last`` decide every family under the sequential rule."""
    from clrbench.analysis.margin import workload_margin
    from clrbench.analysis.stats import final_metrics, resolve_baseline
    from clrbench.study.repeats import all_decided, per_study, sequential_across

    finals = []
    for i, record in enumerate(state.studies[: last + 1]):
        if not record.winners:
            return False
        metrics = final_metrics(load_results(study_folder(out, i) / "final"))
        finals.append(metrics[metrics["schedule"].astype(str).isin(record.winners)])
    baseline = resolve_baseline([f.label for f in config.families], None)
    margin = workload_margin(config.workload, margin_pp).value
    chance = config.workload.chance
    table = per_study(finals, baseline, chance=chance)
    return all_decided(
        sequential_across(table, baseline, finals, margin, config.studies, chance=chance)
    )


def run_draw(
    config: StudyConfig,
    experiment: Experiment,
    folder: Path,
    runner: Runner,
    outcome: StudyOutcome,
    record: DrawState,
    bounds: dict[str, float] | None,
) -> None:
    """One study (``config`` a draw): trials, confirmation, sensitivity, re-check, final; each
    phase planned from :func:`clrbench.study.select.choose` on what the earlier ones
    recorded, so the plan stays a function of the configuration and the results."""
    from clrbench.analysis.stats import final_metrics
    from clrbench.study.analysis import trial_scores

    def finished(phase: str) -> Any:
        return final_metrics(load_results(folder / phase))

    phases = record.phases
    run_phase("trials", experiment, folder, runner, outcome, phases)
    scores = trial_scores(load_results(folder / "trials"), record.trials, config.workload.chance)
    choice = choose(config, scores)
    record.candidates = {f: [c["label"] for c in g] for f, g in choice.candidates.items()}
    if choice.candidates:
        confirm = confirm_experiment(config, choice.candidates)
        run_phase("confirm", confirm, folder, runner, outcome, phases)
        choice = choose(config, scores, finished("confirm"))
    _record_winners(record, choice, outcome)
    if not choice.winners:
        runner.say("no trial finished ok: nothing to re-run")
        return
    confirmation = finished("confirm") if choice.candidates else None
    chosen = {family: w["params"] for family, w in choice.confirmed.items()}
    run_phase(
        "sensitivity", sensitivity_experiment(config, chosen), folder, runner, outcome, phases
    )
    sweep = finished("sensitivity")
    choice = choose(config, scores, confirmation, sweep)
    record.check = [] if choice.check is None else choice.check.to_dict("records")
    record.rechecks = choice.rechecks
    if choice.rechecks:
        recheck = recheck_experiment(config, choice.rechecks)
        run_phase("recheck", recheck, folder, runner, outcome, phases)
        choice = choose(config, scores, confirmation, sweep, finished("recheck"))
    _record_winners(record, choice, outcome)
    chosen = {family: w["params"] for family, w in choice.winners.items()}
    run_phase("final", final_experiment(config, chosen, bounds), folder, runner, outcome, phases)


def _record_winners(record: DrawState, choice: Choice, outcome: StudyOutcome) -> None:
    record.winners = choice.winners
    write_state(outcome.out, outcome.state)
