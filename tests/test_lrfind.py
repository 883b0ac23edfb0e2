"""The LR range test: its reading on synthetic curves, real sweeps on an MNIST subset, the CLI."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest

from clrbench.analysis.lrfind import DATA_COLUMNS, divergence_index, read_seed, smooth, suggest
from clrbench.cli.main import main
from clrbench.config.sweep import CHECK_EVERY, SweepSettings
from clrbench.config.workload import Workload
from clrbench.suite.lrfind import run_lr_find

TRAIN_SIZE = 2000
STEPS = 200


# --- the reading, on made-up curves (no training) ---


def _frame(lr, loss):
    return pd.DataFrame(
        {"seed": 0, "step": np.arange(len(lr)), "lr": lr, "loss": loss, "accuracy": 0.5}
    )


def test_smoothing_is_centred_and_ignores_a_spike():
    loss = np.linspace(2.0, 1.0, 41)
    loss[20] = 50.0
    smoothed = smooth(loss, 5)
    np.testing.assert_allclose(smoothed[5:15], loss[5:15])  # a straight line keeps its place
    assert smoothed[20] < 1.6
    assert np.isnan(smooth(np.array([1.0, np.nan, 1.0]), 3)[1])


def test_divergence_is_four_times_the_lowest_smoothed_loss_or_not_finite():
    loss = np.concatenate([np.linspace(2.3, 0.3, 50), np.full(10, 0.3), np.full(20, 1.3)])
    assert divergence_index(loss, 5) == 60  # centred: the median of 5 jumps where the loss does
    assert divergence_index(loss[:60], 5) is None
    with_nan = np.concatenate([loss[:55], [np.nan]])
    assert divergence_index(with_nan, 5) == 55


def test_reading_finds_the_minimum_before_divergence():
    lr = np.geomspace(1e-4, 10, 101)
    loss = 0.3 + 0.5 * (np.log10(lr) + 0.7) ** 2  # lowest at lr = 10**-0.7, < 4x that until 90
    loss[90:] = 20.0
    reading = read_seed(_frame(lr, loss), 5)
    assert reading["lr_min_loss"] == pytest.approx(10**-0.7, rel=0.15)
    assert reading["divergence_step"] == 90
    # the valley: 0.5 (x + 0.7)^2 <= 0.15, |x + 0.7| <= 0.548 decades, centred on the minimum
    assert reading["valley_low_lr"] == pytest.approx(10 ** (-0.7 - 0.548), rel=0.15)
    assert reading["valley_high_lr"] == pytest.approx(10 ** (-0.7 + 0.548), rel=0.15)
    assert reading["max_lr"] == pytest.approx(10**-0.7, rel=0.15)
    assert reading["base_lr"] == pytest.approx(reading["max_lr"] / 4)


def test_the_valley_includes_a_loss_exactly_at_one_and_a_half_times_the_minimum():
    lr = np.geomspace(1e-3, 1.0, 40)
    loss = np.repeat([2.0, 1.0, 1.5, 3.0], 10)  # the valley: steps 10-29 (1.5 = 1.5 x 1.0)
    reading = read_seed(_frame(lr, loss), 3)
    assert (reading["valley_low_lr"], reading["valley_high_lr"]) == (lr[10], lr[29])
    assert reading["max_lr"] == pytest.approx(np.sqrt(lr[10] * lr[29]))
    assert reading["min_loss"] == 1.0 and reading["divergence_step"] is None


def seed_reading(seed: int, max_lr: float, divergence_lr: float | None = 1.0) -> dict:
    return {
        "seed": seed, "max_lr": max_lr, "valley_low_lr": max_lr / 2, "valley_high_lr": 2 * max_lr,
        "min_loss": 0.3, "initial_loss": 2.3, "lr_min_loss": max_lr, "divergence_lr": divergence_lr,
    }  # fmt: skip


def test_bounds_are_the_median_over_seeds_rounded_to_two_digits():
    # max_lr 0.1, 0.12, 0.5: median 0.12 (the mean, 0.24, would follow the odd seed)
    readings = [seed_reading(0, 0.1), seed_reading(1, 0.12), seed_reading(2, 0.5, None)]
    suggestion = suggest(readings, SweepSettings())
    assert (suggestion["max_lr"], suggestion["base_lr"]) == (0.12, 0.03)
    assert (suggestion["valley_low_lr"], suggestion["valley_high_lr"]) == (0.06, 0.24)
    assert suggestion["divergence_lr"] == 1.0  # the median over the seeds that diverged
    assert suggestion["spread"]["max_lr"] == pytest.approx(5.0)
    assert suggestion["warnings"][0].startswith("seed(s) 2 did not diverge")
    assert (
        suggestion["warnings"][-1]
        == "seeds disagree by 5.0x on max_lr: try more --steps or --seeds"
    )
    assert suggest([seed_reading(0, 0.123456)], SweepSettings())["max_lr"] == 0.12


# --- real sweeps ---


@pytest.fixture(scope="module")
def result(mnist_dir):
    settings = SweepSettings(steps=STEPS, workload=Workload(train_size=TRAIN_SIZE))
    return run_lr_find(settings, [0, 1], str(mnist_dir), jobs=1)


@pytest.mark.slow
def test_bounds_lie_inside_the_sweep_and_below_divergence(result):
    suggestion = result.suggestion
    first_divergence = min(r["divergence_lr"] for r in result.per_seed)
    assert result.settings.min_lr < suggestion["base_lr"] < suggestion["max_lr"]
    assert suggestion["valley_low_lr"] < suggestion["max_lr"] < suggestion["valley_high_lr"]
    assert suggestion["valley_high_lr"] < first_divergence
    assert 0.01 < suggestion["max_lr"] < 1.0  # loose sanity for MNIST and SGD momentum
    assert suggestion["warnings"] == []


@pytest.mark.slow
def test_seeds_agree_within_a_factor_of_two(result):
    assert result.suggestion["spread"]["max_lr"] < 2.0
    assert result.suggestion["spread"]["divergence_lr"] < 2.0


@pytest.mark.slow
def test_logged_rate_is_the_range_test_schedule_at_every_step(result):
    for _, rows in result.data.groupby("seed"):
        steps = rows["step"].to_numpy()
        assert steps.tolist() == list(range(len(rows)))
        np.testing.assert_allclose(rows["lr"], result.settings.schedule(steps), rtol=1e-6)
    assert result.data["lr"].iloc[0] == pytest.approx(1e-4, rel=1e-6)


@pytest.mark.slow
def test_losses_are_each_batchs_own_not_running_means(result):
    loss = result.data.loc[result.data["seed"] == 0, "loss"].to_numpy()[:50]
    running_mean = np.cumsum(loss) / np.arange(1, len(loss) + 1)
    assert not np.allclose(loss, running_mean, rtol=1e-3)
    assert result.data["accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_a_diverging_sweep_stops_soon_after_divergence(result):
    # Checked every CHECK_EVERY steps; the centred median needs half a window past the jump.
    late = CHECK_EVERY + result.settings.window // 2
    for reading in result.per_seed:
        diverged, steps_run = reading["divergence_step"], reading["steps_run"]
        assert diverged is not None and steps_run < STEPS
        assert steps_run % CHECK_EVERY == 0 and diverged < steps_run <= diverged + late


@pytest.mark.slow
def test_a_calm_sweep_runs_to_the_end_and_warns(mnist_dir):
    settings = SweepSettings(1e-4, 0.05, 40, workload=Workload(train_size=TRAIN_SIZE))
    calm = run_lr_find(settings, [3], str(mnist_dir), jobs=1)
    assert calm.per_seed[0]["divergence_step"] is None
    assert calm.per_seed[0]["steps_run"] == 40 and len(calm.data) == 40
    assert calm.suggestion["divergence_lr"] is None
    assert "did not diverge" in calm.suggestion["warnings"][0]


@pytest.mark.slow
def test_results_do_not_depend_on_jobs(result, mnist_dir):
    # `result` ran in this process (jobs=1); these run in two loky worker processes.
    parallel = run_lr_find(result.settings, [0, 1], str(mnist_dir), jobs=2)
    pd.testing.assert_frame_equal(parallel.data, result.data)
    assert parallel.suggestion == result.suggestion


# --- the command ---


@pytest.mark.slow
def test_figure_legend_sits_below_the_curves(result, tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from clrbench.reporting.lrfind import plot

    canvas = FigureCanvasAgg(plot(result, tmp_path / "lr_find.png"))
    canvas.draw()
    figure, renderer = canvas.figure, canvas.get_renderer()
    panels = [axes.get_window_extent(renderer) for axes in figure.axes]
    assert all(axes.get_legend() is None for axes in figure.axes)
    (legend,) = figure.legends
    box = legend.get_window_extent(renderer)
    assert box.y1 <= min(panel.y0 for panel in panels)  # entirely under the lowest panel
    assert "seed 0" in [text.get_text() for text in legend.get_texts()]


@pytest.mark.slow
def test_cli_writes_json_parquet_png_and_a_config(mnist_dir, tmp_path, capsys):
    out, config = tmp_path / "lr", tmp_path / "study" / "clr.toml"
    argv = ["lr-find", "--train-size", str(TRAIN_SIZE), "--steps", str(STEPS), "--seeds", "1"]
    argv += ["--jobs", "1", "--out", str(out), "--data-dir", str(mnist_dir)]
    assert main([*argv, "--emit-config", str(config)]) == 0

    summary = json.loads((out / "lr_find.json").read_text())
    assert {"base_lr", "max_lr", "rule", "per_seed", "sweep", "divergence_lr"} <= set(summary)
    assert "median" in summary["rule"] and summary["sweep"]["steps"] == STEPS
    data = pd.read_parquet(out / "lr_find.parquet")
    assert {c: str(t) for c, t in data.dtypes.items()} == DATA_COLUMNS
    assert (out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    experiment = tomllib.loads(config.read_text())
    # the sweep's settings carry over: 2,000 images (16 steps per epoch), 1 seed, its optimizer
    assert experiment["experiment"] == {
        "name": "clr-from-lr-find", "dataset": "mnist", "epochs": 25, "batch_size": 128,
        "seeds": 1, "optimizer": "sgd-momentum", "train_size": TRAIN_SIZE,
    }  # fmt: skip
    schedules = {s["label"]: s for s in experiment["schedule"]}
    for label in ("clr-iter", "clr-epoch"):
        assert schedules[label]["base_lr"] == summary["base_lr"]
        assert schedules[label]["max_lr"] == summary["max_lr"]
    assert schedules["one-cycle"]["max_lr"] == summary["max_lr"]
    assert schedules["one-cycle"]["total_steps"] == 25 * 16
    # 3 cycles end the run, within the rounding of step_size to whole steps
    assert abs(2 * 3 * schedules["clr-iter"]["step_size"] - (25 * 16 - 1)) <= 3
    printed = capsys.readouterr().out
    assert f"max_lr = {summary['max_lr']:g}" in printed
    says = (
        f"{config} trains 4 schedules x 1 seed = 4 runs of 25 epochs on 2,000 mnist training "
        "images (400 steps per run, 1,600 in all)"
    )
    assert says in printed.splitlines()
    assert f"next: python -m clrbench run --config {config}" in printed
    assert f"# It trains {says.removeprefix(f'{config} trains ')}" in config.read_text()


def test_emitted_config_follows_epochs_and_the_full_dataset():
    from clrbench.analysis.lrfind import LrFindResult
    from clrbench.config.experiment import Experiment
    from clrbench.suite.lrfind import experiment_config

    suggestion = {"base_lr": 0.04, "max_lr": 0.16}
    result = LrFindResult(SweepSettings(), pd.DataFrame(), [], suggestion, 1.0, 1)
    config = experiment_config(result, epochs=8, seeds=5)
    experiment = Experiment.from_dict(config)  # valid as written
    assert (experiment.workload.epochs, experiment.seeds, experiment.workload.train_size) == (
        8,
        tuple(range(5)),
        None,
    )
    schedules = {s["label"]: s for s in config["schedule"]}
    assert schedules["one-cycle"]["total_steps"] == 8 * 469
    assert schedules["clr-epoch"]["step_size"] == 4 * 469  # one cycle of 8 epochs


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--min-lr", "1", "--max-lr", "0.5"], "--max-lr"),
        (["--steps", "-5"], "--steps"),
        (["--seeds", "0"], "--seeds"),
        (["--min-lr", "0"], "--min-lr"),
        (["--mode", "log"], "--mode"),
        (["--jobs", "0"], "--jobs"),
        (["--optimizer", "adamx"], "adamx"),
        (["--optimizer", "schedulefree-sgd"], "schedule-free"),
        (["--train-size", "5"], "train_size"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(flags, named, mnist_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["lr-find", "--out", str(out), "--data-dir", str(mnist_dir), *flags]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clrbench: error: ") and named in lines[0]
    assert not out.exists()
