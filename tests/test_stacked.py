"""Stacked training (``clrbench.train.stacked``) against separate runs (``train_run``).

A stack trains K runs of one seed in one graph; each member must compute what its separate run
computes. The stacked products add the same terms in another order, so the two agree to float32
rounding at first, and training amplifies a rounding difference step by step (measured below),
so agreement is tested per batch with tolerances that say how much, and at the end in
distribution over seeds.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from clrbench.config.experiment import Experiment, StackChoice
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


def test_a_stack_shares_the_workload_whatever_the_seed_and_schedule():
    a, b, _ = small_runs()
    check_stack([a, b, run(b.label, b.schedule, seed=4, epochs=1)])  # seeds may differ
    with pytest.raises(ConfigError, match="differ in epochs, optimizer"):
        check_stack([a, run(b.label, b.schedule, epochs=2, optimizer="adam")])
    with pytest.raises(ConfigError, match="cannot be stacked: lr_mode 'callback'"):
        check_stack([a, run(b.label, b.schedule, lr_mode="callback")])
    with pytest.raises(ConfigError, match="must be distinct"):
        check_stack([a, a])


def test_the_plan_stacks_what_can_stack_under_ids_of_its_own():
    """``plan(stack=True)``: the runs whose rate is in the graph name the stacked trainer (in
    their config, so in their ids); a callback run stays Keras fit, unchanged, and the choice's
    reason says so; a workload none of whose runs can stack: one ConfigError line when asked
    for, off with the reason when automatic. ``plan()`` is the experiment's runs as they were."""
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
    choice = experiment.plan(stack=StackChoice(True, 8, "--stack")).stacking
    assert choice == StackChoice(
        True,
        8,
        "--stack; 2 runs separately: lr_mode 'callback' sets "
        "the rate from a Python callback (Keras fit)",
    )
    fit = Experiment.from_dict({**raw, "experiment": raw["experiment"] | {"trainer": "fit"}})
    with pytest.raises(ConfigError, match="^--stack: the runs of 'x' cannot be stacked: trainer"):
        fit.plan(stack=True)
    off = fit.plan(stack=StackChoice(True, 8, "auto: measured")).stacking
    assert off == StackChoice(False, 8, "auto: trainer 'fit' is Keras fit")


def test_the_runner_cuts_a_workloads_stacked_runs_into_stacks_of_at_most_the_width():
    """``stacks``: the stacked runs of one workload grouped whatever their seed (in the plan's
    order, at the place of their first run), cut into stacks of at most ``width``, at least one
    per job, of sizes within one of each other; every other run a task of its own."""
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
    stacked = (runs[0], runs[1], runs[4], runs[5])
    assert stacks(list(runs)) == [stacked, runs[2], runs[3]]
    assert stacks(list(runs), width=3) == [stacked[:2], stacked[2:], runs[2], runs[3]]
    assert stacks(list(runs), width=8, jobs=2) == [stacked[:2], stacked[2:], runs[2], runs[3]]
    assert stacks([runs[5], runs[3]], width=8, jobs=2) == [(runs[5],), runs[3]]
    sizes = [len(t) for t in stacks([replace(runs[0], seed=i) for i in range(80)], width=32)]
    assert sizes == [27, 26, 27]


def test_auto_stacks_where_measured_and_says_why():
    """``choose_stack``: auto by the measured table (mnist1d-mlp stacks on a CPU, mnist-mlp does
    not), asked-for choices as asked, the width measured unless set; a bad width is one line."""
    from clrbench.suite import devices

    if devices.visible_gpus():
        pytest.skip("on a GPU auto stacks every workload")
    small = devices.choose_stack(None, "mnist1d-mlp")
    assert small.on and small.width == devices.CPU_STACKING["mnist1d-mlp"][0]
    assert small.reason.startswith("auto: mnist1d-mlp measured")
    mnist = devices.choose_stack("auto", "mnist-mlp")
    assert not mnist.on and "GEMM rate" in mnist.reason
    assert devices.choose_stack(True, "mnist-mlp", 4) == StackChoice(
        True, 4, "--stack, width 4 (--stack-width)"
    )
    assert not devices.choose_stack(False, "mnist1d-mlp").on
    assert "not measured" in devices.choose_stack(None, "blobs").reason
    with pytest.raises(ConfigError, match="--stack-width must be a positive integer, got 0"):
        devices.choose_stack(None, "mnist1d-mlp", 0)


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
def test_the_suite_stacks_under_its_own_run_ids_whatever_jobs(tmp_path, mnist_dir):
    """``run_suite(stack=True)``: the same per-batch logs with --jobs 1 (one stack of 6) and
    --jobs 2 (two stacks of 3), equal to training a stack directly, recorded as the stacked
    trainer's under ids of their own with the choice in stacking.json; with stacking off the
    ids are the separate runs'."""
    import json

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
    stacking = json.loads((tmp_path / "one" / "stacking.json").read_text())
    assert stacking["stack"] is True and stacking["reason"].startswith("--stack, width")
    seed_1 = [spec.stacked() for spec in experiment.runs() if spec.seed == 1]
    direct = {r.spec.run_id: r for r in train_stack(seed_1, data_dir=data_dir)}
    sizes = set()
    for run_id in one.records:
        records = [read_record(run_dir(tmp_path / f, run_id)) for f in ("one", "two")]
        assert records[0].config["trainer"] == "stacked" and records[0].status == "ok"
        assert records[0].provenance["device"] == "CPU"
        sizes.add((records[0].provenance["stack_size"], records[1].provenance["stack_size"]))
        logs = [
            pq.read_table(run_dir(tmp_path / f, run_id) / "batches.parquet").to_pandas()
            for f in ("one", "two")
        ]
        assert logs[0][LOG].equals(logs[1][LOG]), run_id
        if run_id in direct:
            np.testing.assert_array_equal(logs[0][LOG], direct[run_id].batches[LOG])
    assert len(direct) == 3 and sizes == {(6, 3)}
    off = run_suite(experiment, tmp_path / "off", jobs=2, data_dir=data_dir, stack=False)
    assert set(off.records) == separate_ids


@pytest.mark.parametrize(
    "case, expected",
    [
        ("plugin_cases:dropout", "layer dropout (Dropout) has non-trainable state"),
        ("plugin_cases:good", None),
        ("plugin_cases:conv", None),
    ],
)
def test_a_plugins_model_is_stacked_or_refused_in_one_line(case, expected):
    """Before anything trains: a model a stack cannot write out is one line saying why."""
    from clrbench.train.stacked import check_model_stackable

    workload = Workload(dataset=case, model=case)
    if expected is None:
        check_model_stackable(workload)
        return
    with pytest.raises(ConfigError) as error:
        check_model_stackable(workload)
    message = str(error.value)
    assert expected in message and "\n" not in message and message.endswith("--no-stack")


def mnist1d_runs(epochs: int, seeds=(0, 1, 2)) -> list[RunSpec]:
    """Two of mnist1d-mlp's schedules (a constant and a per-iteration cycle) x ``seeds``."""
    from clrbench.config.workloads import named

    workload = named("mnist1d-mlp").workload(epochs=epochs)
    schedules = {
        "constant": make("constant", lr=0.1),
        "clr": make("triangular", base_lr=0.02, max_lr=0.2, step_size=64),
    }
    return [RunSpec(label, s, seed, workload) for seed in seeds for label, s in schedules.items()]


@pytest.mark.slow
def test_mnist1d_members_of_any_seed_equal_their_separate_runs_over_the_whole_run():
    """mnist1d-mlp at its own length (100 epochs of 32 steps: 3,200), two schedules x three seeds
    in one stack (each member its own initial weights and batch order). Every rate is bitwise
    the separate run's. The batch losses agree to float32 rounding at first and training then
    amplifies the difference, as the default suite's stack test describes. How soon it grows
    depends on the CPU's kernels: on the machine this was first measured on (one thread),
    every batch loss stayed within 4 float32 ulps of the separate run's up to step 90
    (constant, seed 1) to 287 (constant, seed 0); on the AVX-512 machine of 7 December 2026 the
    constant rate's seed 1 left 4 ulps at step 22 (0-1 ulps before, then roughly doubling every
    step: chaos, not a different computation), the cycle's at step 46. The final test accuracy
    0.654 vs 0.664, 0.686 vs 0.681 (constant), 0.674 vs 0.686 (clr, seed 0), of 1,000 test
    sequences. Bounds: 4 ulps for the first half epoch (16 steps); 0.03 at the end. A member's
    numbers do not depend on its stack: the same runs in the reverse order and two at a time
    give the same logs bitwise (measured). A member's seconds are its share: the members' wall
    times add up to the stack's."""
    specs = mnist1d_runs(epochs=100)
    stacked = train_stack([s.stacked() for s in specs])
    reordered = train_stack([s.stacked() for s in specs[::-1]])[::-1]
    pairs = [
        m for i in range(0, 6, 2) for m in train_stack([s.stacked() for s in specs[i : i + 2]])
    ]
    wall = stacked[0].info["stack"]["wall_s"]
    assert sum(m.wall_s for m in stacked) == pytest.approx(wall, rel=1e-9)
    for spec, member, again, pair in zip(specs, stacked, reordered, pairs, strict=True):
        alone = train_run(spec)
        a, b = member.batches, alone.batches
        assert len(a) == len(b) == 3200 and member.status == alone.status == "ok"
        np.testing.assert_array_equal(a["lr"], b["lr"])
        np.testing.assert_allclose(a["loss"][:16], b["loss"][:16], rtol=4 * 2**-23, atol=0)
        final = member.epochs["test_accuracy"].iloc[-1] - alone.epochs["test_accuracy"].iloc[-1]
        assert abs(final) <= 0.03, (spec.label, spec.seed, final)
        for other in (again, pair):
            assert other.batches[LOG].equals(a[LOG]), spec.label
            assert other.epochs[["test_loss", "test_accuracy"]].equals(
                member.epochs[["test_loss", "test_accuracy"]]
            )
        assert member.info["stack"]["size"] == 6 and member.train_s < member.wall_s


@pytest.mark.slow
def test_a_plugins_conv_model_stacks_and_equals_its_separate_runs(monkeypatch):
    """A plug-in with a Conv2D (called once per member in the stack) and Flatten (on the
    members' examples side by side) besides Dense: 3 epochs, two seeds in one stack; rates
    bitwise, batch losses within 1e-5 relative of the separate runs' (measured: 27 of 30 equal
    to 4 ulps, the largest 1.6e-6 relative, at a loss of 0.015)."""
    case = "plugin_cases:conv"
    workload = Workload(dataset=case, model=case, epochs=3, batch_size=32)
    specs = [RunSpec("c", make("constant", lr=0.05), seed, workload) for seed in (0, 1)]
    for spec, member in zip(specs, train_stack([s.stacked() for s in specs]), strict=True):
        alone = train_run(spec)
        np.testing.assert_array_equal(member.batches["lr"], alone.batches["lr"])
        np.testing.assert_allclose(member.batches["loss"], alone.batches["loss"], rtol=1e-5)


def test_the_run_plan_says_how_it_stacks():
    """The line printed under the run plan: on, how many runs in how many stacks (a multiple
    of the jobs), and why; or off and why."""
    from clrbench.suite.session import stacking_line

    raw = copy.deepcopy(PRESETS["default"])
    experiment = Experiment.from_dict(raw | {"experiment": raw["experiment"] | {"seeds": 2}})
    on = experiment.plan(stack=StackChoice(True, 4, "--stack, width 4 (--stack-width)"))
    assert stacking_line(on, jobs=2) == (
        "stacking: on, 10 runs in 4 stacks (--stack, width 4 (--stack-width))"
    )
    assert stacking_line(on, jobs=1) == (
        "stacking: on, 10 runs in 3 stacks (--stack, width 4 (--stack-width))"
    )
    off = experiment.plan(stack=StackChoice(False, 8, "auto: mnist-mlp not faster"))
    assert stacking_line(off, jobs=2) == "stacking: off (auto: mnist-mlp not faster)"
    assert stacking_line(experiment.plan(), jobs=2) is None
