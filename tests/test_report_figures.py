"""The run report's figures (``clrbench.reporting.figures``) and the palette of every report
(``clrbench.reporting.page``): one colour per schedule everywhere, colour-blind safe, the panels."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_synthetic

from clrbench.reporting import figures, page
from clrbench.reporting import render as report
from clrbench.store.results import load_results


@pytest.fixture(scope="module")
def small(synthetic_small):
    return load_results(synthetic_small)


def figure_texts(figure) -> set[str]:
    texts = {t.get_text() for legend in figure.legends for t in legend.get_texts()}
    for ax in figure.axes:
        texts |= {t.get_text() for t in ax.get_yticklabels()}
    return texts


def test_every_schedule_in_every_figure_with_one_colour(small):
    analysis = report.analyse(small)
    built = figures.build_figures(small, analysis.final, analysis.reach, 0.9)
    assert len(built) == 6
    colors = page.palette(small.schedules)
    for spec in built:
        texts = figure_texts(spec["figure"])
        assert all(any(t.startswith(s) for t in texts) for s in small.schedules), spec["name"]
        for legend in spec["figure"].legends:
            for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
                schedule = text.get_text().split(" (")[0]
                assert np.allclose(handle.get_color()[:3], colors[schedule][:3])
        for ax in spec["figure"].axes:  # lines drawn by seaborn use the palette too
            for line in ax.get_lines():
                color = tuple(np.round(np.asarray(mcolor(line.get_color())[:3]), 4))
                assert color in palette_set(colors) or color[0] == color[1] == color[2]


def mcolor(color):
    from matplotlib.colors import to_rgba

    return to_rgba(color)


def palette_set(colors) -> set[tuple]:
    return {tuple(np.round(np.asarray(c[:3]), 4)) for c in colors.values()}


def _cam02_views(colors) -> list[np.ndarray]:
    """The colours in CAM02-UCS as seen with normal vision and with full (severity 100)
    deuteranomaly, protanomaly and tritanomaly (Machado et al. 2009, via colorspacious)."""
    from colorspacious import cspace_convert

    rgb = np.array([c[:3] for c in colors])
    views = [cspace_convert(rgb, "sRGB1", "CAM02-UCS")]
    for kind in ("deuteranomaly", "protanomaly", "tritanomaly"):
        cvd = {"name": "sRGB1+CVD", "cvd_type": kind, "severity": 100}
        seen = np.clip(cspace_convert(rgb, cvd, "sRGB1"), 0, 1)
        views.append(cspace_convert(seen, "sRGB1", "CAM02-UCS"))
    return views


def _closest_pair(colors) -> float:
    distances = [
        np.linalg.norm(view[:, None] - view[None, :], axis=-1) for view in _cam02_views(colors)
    ]
    pairs = ~np.eye(len(colors), dtype=bool)
    return float(min(d[pairs].min() for d in distances))


def test_palette_is_distinguishable_also_with_colour_vision_deficiency():
    default = list(page.palette([f"s{i}" for i in range(5)]).values())
    extended = list(page.palette([f"s{i}" for i in range(10)]).values())
    # CAM02-UCS distance: ~1 is a just-noticeable difference; seaborn's colour-blind palette
    # in the order used before had 5.8 (orange vs tan under protanomaly) in the first five
    assert _closest_pair(default) >= 20
    assert _closest_pair(extended) >= 8
    white = np.ones((1, 3))
    for view, white_view in zip(_cam02_views(extended), _cam02_views(white), strict=True):
        assert np.linalg.norm(view - white_view, axis=-1).min() >= 25  # lines show on white


def test_training_panels_are_loss_and_error_rate_on_log_axes(small):
    figure = figures.training_figure(small, page.palette(small.schedules), window=5)
    loss, error = figure.axes
    assert (loss.get_yscale(), error.get_yscale()) == ("log", "log")
    assert error.get_ylabel() == "training error rate (1 − accuracy)"
    smooth = figures.smoothed_batches(small, 5)
    plotted = np.concatenate([line.get_ydata() for line in error.get_lines()])
    expected = 1 - smooth.groupby(["schedule", "step"], observed=True)["accuracy"].mean()
    np.testing.assert_allclose(np.sort(plotted), np.sort(expected.to_numpy()))


def test_test_panels_fit_epochs_two_onwards(tmp_path):
    folder = load_synthetic().write_synthetic_results(
        tmp_path / "synthetic", seeds=3, epochs=5, train_size=1280
    )
    synthetic = load_results(folder)
    figure = figures.evaluation_figure(synthetic, page.palette(synthetic.schedules))
    loss_axes = figure.axes[1]
    epochs = synthetic.epochs.assign(epoch_number=synthetic.epochs["epoch"] + 1)
    first = epochs[epochs["epoch_number"] == 1]["test_loss"]
    later = epochs[epochs["epoch_number"] >= 2]["test_loss"]
    low, high = loss_axes.get_ylim()
    assert low <= later.min() and later.max() <= high  # every later epoch is on the axis
    assert high < first.max()  # but epoch 1 does not set the scale


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
def test_the_same_folder_gives_the_same_figures_byte_for_byte(tmp_path):
    """seaborn jitters strip plots with NumPy's global generator: seeded per plot, the strips
    come out the same every time, and the caller's generator state is left as it was."""
    folder = load_synthetic().write_synthetic_results(
        tmp_path / "s", ("constant", "clr-iter"), seeds=3, epochs=2, train_size=1280
    )
    results = load_results(folder)
    analysis = report.analyse(results)

    def pngs() -> dict[str, bytes]:
        specs = figures.build_figures(results, analysis.final, analysis.reach, analysis.target)
        return {spec["name"]: page.png_bytes(spec["figure"]) for spec in specs}

    before = np.random.get_state()  # noqa: NPY002 (the global generator seaborn reads)
    first = pngs()
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(before[1], after[1]) and before[2] == after[2]
    assert pngs() == first
