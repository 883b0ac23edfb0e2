"""The one page writer of every report: jinja environment, palette, figure encoding, atomic files.

The run report (``render.py``), the study report (``study.py``) and lr-find's figure
(``lrfind.py``) write through it, so every report file goes through ``clrbench.store.atomic``:
a reader sees the old report or the new one, never half of one. The templates
(``clrbench/templates``) extend ``_base.html.j2`` / ``_base.md.j2`` and import ``_macros.j2``.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import seaborn as sns
from matplotlib.figure import Figure

from clrbench.errors import ClrbenchError
from clrbench.reporting.tables import md_cell
from clrbench.store import atomic

FORMATS = ("html", "md")
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
FIGURE_DPI = 100

# One colour per schedule, in experiment order: from Okabe & Ito's and Paul Tol's palettes,
# ordered so that in CAM02-UCS every pair of the first five differs by at least 22 (every pair
# of all ten by at least 8.8) under normal vision and under simulated full deuteranomaly,
# protanomaly and tritanomaly (colorspacious; tests/test_report_figures.py checks it). Related
# schedules of the default suite get related hues: clr-epoch light blue, clr-iter dark blue.
PALETTE = (
    "#882255",  # wine: constant
    "#CCBB44",  # yellow: step-decay
    "#56B4E9",  # sky blue: clr-epoch
    "#0072B2",  # blue: clr-iter
    "#CC6677",  # rose: sine-exp
    "#332288",  # indigo
    "#999933",  # olive
    "#AA3377",  # purple
    "#117733",  # green
    "#CC79A7",  # pink
)


# The default suite's labels (and the study's families of the same names) keep their colour in
# every report and figure, run, study or across workloads, whatever order they come in.
FIXED = ("constant", "step-decay", "clr-epoch", "clr-iter", "sine-exp")


def palette(labels: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per schedule (or family) label (colour-blind safe up to 10). A label of
    ``FIXED`` has its own colour everywhere; the others take the rest in order (the last five
    first, when a fixed label is present, so that they too keep theirs across reports)."""
    labels = list(labels)
    if len(labels) > len(PALETTE):
        return dict(zip(labels, sns.color_palette("husl", len(labels)), strict=True))
    chosen = {label: PALETTE[FIXED.index(label)] for label in labels if label in FIXED}
    order = list(PALETTE[len(FIXED) :] + PALETTE[: len(FIXED)]) if chosen else list(PALETTE)
    spare = iter(c for c in order if c not in chosen.values())
    hexes = [chosen[label] if label in chosen else next(spare) for label in labels]
    return dict(zip(labels, sns.color_palette(hexes), strict=True))


def hex_colors(colors: Mapping[str, Sequence[float]]) -> dict[str, str]:
    """``#rrggbb`` of each RGB(A) colour, for the tables' swatches."""
    return {
        label: "#" + "".join(f"{round(c * 255):02x}" for c in color[:3])
        for label, color in colors.items()
    }


def check_options(formats: Sequence[str], target: float | None) -> tuple[str, ...]:
    """Validate the output formats and target (ClrbenchError with one line)."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        got = ",".join(unknown) if unknown else "nothing"
        raise ClrbenchError(f"--format must be one or more of {','.join(FORMATS)}, got {got}")
    if target is not None and not (0 < target <= 1 and math.isfinite(target)):
        raise ClrbenchError(f"--target is a test accuracy in (0, 1], e.g. 0.98; got {target}")
    return formats


@functools.cache
def environment(templates: Path = TEMPLATES) -> jinja2.Environment:
    """The jinja environment over ``templates``: HTML escaped, a missing variable an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = md_cell
    return env


def png_bytes(figure: Figure, dpi: int = FIGURE_DPI) -> bytes:
    """The figure as PNG bytes (Agg canvas)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def encode_figures(specs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each ``{"name", "title", "caption", "figure"}`` (or ``"png"``: bytes already rendered)
    rendered once to PNG: the bytes for
    Markdown's ``figures/<name>.png``, base64 for the self-contained HTML, the pixel size."""
    entries = []
    for spec in specs:
        if "png" in spec:  # a figure kept as it was rendered (its PNG's own size)
            png = spec["png"]
            width, height = (int.from_bytes(png[i : i + 4], "big") for i in (16, 20))
        else:
            png = png_bytes(spec["figure"])
            width, height = spec["figure"].get_size_inches() * FIGURE_DPI
        entries.append(
            {k: v for k, v in spec.items() if k not in ("figure", "png")}
            | {"png": png, "data": base64.b64encode(png).decode("ascii")}
            | {"file": f"figures/{spec['name']}.png", "width": round(width)}
            | {"lead": bool(spec.get("lead"))}  # the report's first figure (reporting.lead)
            | {"height": round(height)}
        )
    return entries


def output_folder(out_dir: str | Path) -> Path:
    """``out_dir``, created if missing (ClrbenchError when it is a file)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ClrbenchError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_pages(
    out_dir: str | Path,
    template: str,
    context: Mapping[str, Any],
    figures: Sequence[Mapping[str, Any]],
    formats: Sequence[str] = FORMATS,
    templates: Path = TEMPLATES,
) -> dict[str, Path]:
    """Render ``<template>.<kind>.j2`` to ``out_dir/report.<kind>`` for each format, Markdown's
    figures to ``out_dir/figures/``; every file atomically. Returns the pages by kind."""
    out = output_folder(out_dir)
    env = environment(templates)
    written: dict[str, Path] = {}
    for kind in formats:
        if kind == "md":
            (out / "figures").mkdir(exist_ok=True)
            for figure in figures:
                atomic.write_bytes(out / figure["file"], figure["png"])
        page = env.get_template(f"{template}.{kind}.j2").render(context)
        written[kind] = atomic.write_text(out / f"report.{kind}", page)
    return written


def write_figure(figure: Figure, path: str | Path, dpi: int = FIGURE_DPI) -> Path:
    """One figure as a PNG file of its own, atomically."""
    return atomic.write_bytes(path, png_bytes(figure, dpi))
