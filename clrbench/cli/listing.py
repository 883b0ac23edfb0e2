"""``clrbench list``: every schedule with its parameters and origin, and the presets."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from clrbench.config.presets import PRESET_HELP, PRESETS
from clrbench.schedules import catalog


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` subcommand."""
    p = subparsers.add_parser("list", help="show the schedules and presets")
    p.set_defaults(func=list_command)


def list_command(args: argparse.Namespace) -> int:
    """Print the schedule registry and the presets with their schedule labels."""
    console = Console()
    table = Table(
        title="Schedules: clrbench.schedules.make(name, **params); steps count iterations"
    )
    for column in ("name", "parameters", "what it does", "from"):
        table.add_column(column)
    for name, params, doc, origin in catalog(keras=True):
        shown = ", ".join(p if default is None else f"{p}={default}" for p, default, _ in params)
        table.add_row(name, shown, doc, origin)
    console.print(table)
    presets = Table(title="Presets (python -m clrbench run --preset NAME)")
    for column in ("preset", "what", "schedules (label = name)"):
        presets.add_column(column)
    for name, experiment in PRESETS.items():
        labels = ", ".join(f"{s['label']} = {s['name']}" for s in experiment["schedule"])
        presets.add_row(name, PRESET_HELP[name], labels)
    console.print(presets)
    return 0
