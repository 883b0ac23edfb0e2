"""Stacked training (``clrbench.train.stacked``) against separate runs (``train_run``).

A stack trains K runs of one seed in one graph; each member must compute what its separate run
computes. The stacked products add the same terms in another order, so the two agree to float32
rounding at first, and training amplifies a rounding difference step by step (measured below),
so agreement is tested per batch with tolerances that say how much, and at the end in
distribution over seeds.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.config.runs import RunSpec
from clrbench.config.workload import Workload
from clrbench.errors import ConfigError
from clrbench.schedules import make
from clrbench.train.run import train_run
from clrbench.train.stacked import check_stack, train_stack

LOG = ["lr", "loss", "accuracy"]


def preset_runs(preset: str, seed: int, epochs: int, **settings) -> list[RunSpec]:
    """The runs of one seed of a preset (its schedules as the preset scales them)."""
    data = copy.deepcopy(PRESETS[preset])
    data["experiment"] |= {"epochs": epochs, "seeds": [seed], **settings}
    return Experiment.from_dict(data).runs()


def run(label: str, schedule, seed: int = 3, lr_mode: str = "graph", **workload) -> RunSpec:
    """A run of ``schedule`` on 2,000 images (``workload``: other workload settings)."""
    return RunSpec(label, schedule, seed, Workload(**{"train_size": 2000, **workload}), lr_mode)


def small_runs(optimizer: str = "sgd-momentum", epochs: int = 1, scale: float = 1.0):
    """Three schedules at rates ``scale`` x those good for SGD with momentum, on 2,000 images."""
    train_size = 2000
    spe = -(-train_size // 128)
    schedules = {
        "constant": make("constant", lr=0.05 * scale),
        "clr": make("triangular", base_lr=0.01 * scale, max_lr=0.1 * scale, step_size=spe),
        "epoch-decay": make(
            "step_decay",
            initial_lr=0.05 * scale,
            drop=0.5,
            every_steps=spe,
            granularity="epoch",
            steps_per_epoch=spe,
        ),
    }
    return [
        run(label, schedule, epochs=epochs, train_size=train_size, optimizer=optimizer)
        for label, schedule in schedules.items()
    ]


def test_a_stack_shares_everything_but_the_schedule():
    a, b, _ = small_runs()
    check_stack([a, b])
    with pytest.raises(ConfigError, match="differ in seed"):
        check_stack([a, run(b.label, b.schedule, seed=4)])
    with pytest.raises(ConfigError, match="differ in epochs, optimizer"):
        check_stack([a, run(b.label, b.schedule, epochs=2, optimizer="adam")])
    with pytest.raises(ConfigError, match="lr_mode 'callback'"):
        check_stack([a, run(b.label, b.schedule, lr_mode="callback")])
    with pytest.raises(ConfigError, match="distinct labels"):
        check_stack([a, a])


def test_the_plan_stacks_what_can_stack_under_ids_of_its_own():
    """``plan(stack=True)``: the runs whose rate is in the graph name the stacked trainer (in
    their config, so in their ids); a callback run stays Keras fit, unchanged; a fit workload
    does not stack. ``plan()`` is the experiment's runs as they were."""
    raw = {
        "experiment": {"name": "x", "seeds": 2},
        "schedule": [
            {"label": "graph", "name": "constant", "lr": 0.1},
            {"label": "callback", "name": "constant", "lr": 0.1, "lr_mode": "callback"},
        ],
    }
    experiment = Experiment.from_dict(raw)
    separate, stacked = experiment.plan(), experiment.plan(stack=True)
    assert separate.runs == tuple(experiment.runs())
    assert [s.trainer for s in stacked.runs] == ["stacked", "stacked", "fit", "fit"]
    assert [s.config().get("trainer") for s in stacked.runs] == ["stacked"] * 2 + ["fit"] * 2
    assert stacked.run_ids[2:] == separate.run_ids[2:]
    assert not set(stacked.run_ids[:2]) & set(separate.run_ids)
    assert stacked.experiment == experiment  # what experiment.toml stores is unchanged
    fit = Experiment.from_dict({**raw, "experiment": raw["experiment"] | {"trainer": "fit"}})
    assert fit.plan(stack=True) == fit.plan()


def test_the_runner_trains_a_seeds_stacked_runs_as_one_task():
    """``stacks``: the stacked runs grouped by seed (in the plan's order, at the place of their
    first run), every other run a task of its own; pending runs only."""
    from clrbench.suite.runner import stacks

    raw = {
        "experiment": {"name": "x", "seeds": 2},
        "schedule": [
            {"label": "a", "name": "constant", "lr": 0.1},
            {"label": "callback", "name": "constant", "lr": 0.1, "lr_mode": "callback"},
            {"label": "b", "name": "constant", "lr": 0.2},
        ],
    }
    runs = Experiment.from_dict(raw).plan(stack=True).runs  # a-s0 a-s1 cb-s0 cb-s1 b-s0 b-s1
    tasks = stacks(list(runs))
    assert tasks == [(runs[0], runs[4]), (runs[1], runs[5]), runs[2], runs[3]]
    assert stacks([runs[5], runs[3]]) == [(runs[5],), runs[3]]


@pytest.mark.slow
def test_default_suite_stack_equals_separate_runs_over_a_full_epoch(mnist_dir):
    """The default suite's five schedules of seed 0, one full epoch (469 steps), stacked and
    separately. Rates: bitwise equal. Losses: step 0 (the same initial weights, forward only)
    within 1 ulp; from there the two differ by float32 rounding (2.4e-7 at a loss of 2.3) that
    training amplifies, the more the higher the effective rate. Measured on this CPU (x86, one
    thread) over the epoch, seed 0 / seed 1: the largest batch-loss difference 0.013 / 0.05
    (constant 0.1 / step-decay 0.2, both x10 by momentum), the first step beyond 1e-6 no earlier
    than step 5 (sine-exp, seed 1), batch accuracies <= 4 images of 128 apart, the epoch's test
    accuracy <= 0.0007 and test loss <= 0.005 apart. The bounds: those over both seeds with
    ~2x room for another CPU's rounding (the test runs seed 0)."""
    specs = preset_runs("default", seed=0, epochs=1)
    stacked = train_stack(specs, data_dir=str(mnist_dir))
    for spec, member in zip(specs, stacked, strict=True):
        alone = train_run(spec, data_dir=str(mnist_dir))
        a, b = member.batches, alone.batches
        assert len(a) == len(b) == 469 and member.status == alone.status == "ok"
        assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes)
        assert list(member.epochs.columns) == list(alone.epochs.columns)
        np.testing.assert_array_equal(a["lr"], b["lr"])  # the same in-graph rate, bitwise
        np.testing.assert_array_equal(
            a[["epoch", "step", "batch_size"]], b[["epoch", "step", "batch_size"]]
        )
        loss = np.abs(a["loss"].to_numpy() - b["loss"].to_numpy())
        accuracy = np.abs(a["accuracy"].to_numpy() - b["accuracy"].to_numpy())
        assert loss[0] <= 3e-7 and accuracy[0] == 0, spec.label  # the same weights: 1 ulp
        assert loss[:5].max() <= 1e-6, (spec.label, loss[:5])
        assert loss.max() <= 0.1, (spec.label, loss.max())
        assert accuracy.max() <= 8 / 128, (spec.label, accuracy.max())
        ends = member.epochs.iloc[0], alone.epochs.iloc[0]
        assert abs(ends[0]["test_accuracy"] - ends[1]["test_accuracy"]) <= 0.002, spec.label
        assert abs(ends[0]["test_loss"] - ends[1]["test_loss"]) <= 0.01, spec.label


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, scale", [("sgd", 1.0), ("adam", 0.02), ("rmsprop", 0.02)])
def test_other_optimizers_follow_the_keras_update_rule(mnist_dir, optimizer, scale):
    """Keras's SGD, Adam and RMSprop written out on stacked weights: 16 steps of 2,000 images,
    the same rates bitwise, batch losses within a few float32 ulps of the separate runs'
    (measured: relative <= 6.3e-7, Adam) and the test loss after the last update within 2e-5
    relative (measured 5.2e-6, RMSprop: amplification has begun)."""
    specs = small_runs(optimizer, scale=scale)  # Adam, RMSprop: rates near Keras' 0.001
    for spec, member in zip(specs, train_stack(specs, data_dir=str(mnist_dir)), strict=True):
        alone = train_run(spec, data_dir=str(mnist_dir))
        np.testing.assert_array_equal(member.batches["lr"], alone.batches["lr"])
        np.testing.assert_allclose(member.batches["loss"], alone.batches["loss"], rtol=4e-6)
        np.testing.assert_allclose(member.epochs["test_loss"], alone.epochs["test_loss"], rtol=2e-5)


@pytest.mark.slow
def test_a_diverged_member_stops_only_itself(mnist_dir):
    """A member at a constant rate of 50 diverges in its first epoch: it stops at the end of that
    epoch with its log ended at the diverged step, as its separate run does; the other members
    train on, and their logs are bitwise those of a stack without it (each member's products
    have the same shapes whatever K is, and a stopped member's weights are left alone)."""
    a, c, _ = small_runs(epochs=3)
    bad = run("too-fast", make("constant", lr=50.0), epochs=3)
    with_bad = train_stack([a, bad, c], data_dir=str(mnist_dir))
    without = train_stack([a, c], data_dir=str(mnist_dir))
    alone = train_run(bad, data_dir=str(mnist_dir))
    diverged = with_bad[1]
    assert alone.status == diverged.status == "diverged"
    assert diverged.diverged_step == alone.diverged_step < 16
    assert len(diverged.batches) == diverged.diverged_step + 1 and len(diverged.epochs) == 1
    np.testing.assert_array_equal(diverged.batches["lr"], alone.batches["lr"])
    for member, reference in zip([with_bad[0], with_bad[2]], without, strict=True):
        assert member.status == "ok" and len(member.epochs) == 3
        assert member.batches[LOG].equals(reference.batches[LOG])
        assert member.epochs[["test_loss", "test_accuracy"]].equals(
            reference.epochs[["test_loss", "test_accuracy"]]
        )


@pytest.mark.slow
def test_per_epoch_schedules_in_a_stack_change_at_the_epoch_boundary(mnist_dir):
    """Full MNIST, 2 epochs: per-epoch schedules inside a stack (the default suite's clr-epoch, and
    a step decay halving every epoch) hold their rate for steps 0..468 and change at step 469
    exactly; every logged rate is the rate the Keras adapter gives a separate run at that step
    (``in_graph_rates``), bitwise."""
    from dataclasses import replace

    from clrbench.schedules import in_graph_rates

    (clr_epoch,) = [s for s in preset_runs("default", seed=1, epochs=2) if s.label == "clr-epoch"]
    halving = make(
        "step_decay",
        initial_lr=0.1,
        drop=0.5,
        every_steps=469,
        granularity="epoch",
        steps_per_epoch=469,
    )
    specs = [clr_epoch, replace(clr_epoch, label="halving", schedule=halving)]
    for spec, member in zip(specs, train_stack(specs, data_dir=str(mnist_dir)), strict=True):
        rates = member.batches["lr"].to_numpy()
        assert len(rates) == 938
        np.testing.assert_array_equal(rates, in_graph_rates(spec.schedule, 938).astype(np.float64))
        assert np.all(rates[:469] == rates[0]) and np.all(rates[469:] == rates[469])
        assert rates[469] != rates[468]
        assert member.epochs["lr"].tolist() == [rates[468], rates[937]]


@pytest.mark.slow
def test_stacked_and_separate_end_alike_over_seeds(mnist_dir):
    """The quick preset (6,000 images, 4 epochs), seeds 0-3: per schedule, each seed's final
    test accuracy stacked minus separate is small next to how much the seeds differ (measured:
    paired differences <= 0.0005, 5 test images in 10,000, against seed
    spreads of 0.0022-0.019)."""
    runs = {seed: preset_runs("quick", seed=seed, epochs=4) for seed in range(4)}
    finals: dict[str, list[tuple[float, float]]] = {}
    for specs in runs.values():
        for spec, member in zip(specs, train_stack(specs, data_dir=str(mnist_dir)), strict=True):
            alone = train_run(spec, data_dir=str(mnist_dir))
            pair = (member.epochs["test_accuracy"].iloc[-1], alone.epochs["test_accuracy"].iloc[-1])
            finals.setdefault(spec.label, []).append(pair)
    for label, pairs in finals.items():
        stacked, separate = np.array(pairs).T
        spread = separate.max() - separate.min()
        assert np.abs(stacked - separate).max() <= max(0.5 * spread, 0.002), (label, pairs)
        assert abs(stacked.mean() - separate.mean()) <= 0.25 * spread + 0.001, (label, pairs)


STACKED_SUITE = {
    "experiment": {"name": "stacked", "epochs": 2, "seeds": 2, "train_size": 2000},
    "schedule": [
        {"label": "constant", "name": "constant", "lr": 0.05},
        {"label": "clr", "name": "triangular", "base_lr": 0.01, "max_lr": 0.1, "step_size": 16},
        {"label": "slow", "name": "constant", "lr": 0.01},
    ],
}


@pytest.mark.slow
def test_the_suite_stacks_each_seed_under_its_own_run_ids_whatever_jobs(tmp_path, mnist_dir):
    """``run_suite(stack=True)``: one stack per seed, the same per-batch logs with --jobs 1 and 2
    (and equal to training the stack directly), recorded as the stacked trainer's under ids of
    their own; with stacking off the ids are the separate runs'."""
    import pyarrow.parquet as pq

    from clrbench.store.results import read_record, run_dir
    from clrbench.suite.runner import run_suite

    experiment = Experiment.from_dict(STACKED_SUITE)
    separate_ids = {spec.run_id for spec in experiment.runs()}
    data_dir = str(mnist_dir)
    one = run_suite(experiment, tmp_path / "one", jobs=1, data_dir=data_dir, stack=True)
    two = run_suite(experiment, tmp_path / "two", jobs=2, data_dir=data_dir, stack=True)
    assert set(one.records) == set(two.records) and len(one.records) == 6
    assert not set(one.records) & separate_ids
    seed_1 = [spec.stacked() for spec in experiment.runs() if spec.seed == 1]
    direct = {r.spec.run_id: r for r in train_stack(seed_1, data_dir=data_dir)}
    for run_id in one.records:
        record = read_record(run_dir(tmp_path / "one", run_id))
        assert record.config["trainer"] == "stacked" and record.status == "ok"
        assert record.provenance["device"] == "CPU"
        logs = [
            pq.read_table(run_dir(tmp_path / f, run_id) / "batches.parquet").to_pandas()
            for f in ("one", "two")
        ]
        assert logs[0][LOG].equals(logs[1][LOG]), run_id
        if run_id in direct:
            np.testing.assert_array_equal(logs[0][LOG], direct[run_id].batches[LOG])
    assert len(direct) == 3
    off = run_suite(experiment, tmp_path / "off", jobs=2, data_dir=data_dir, stack=False)
    assert set(off.records) == separate_ids
