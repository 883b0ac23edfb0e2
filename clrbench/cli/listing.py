"""``clrbench list``: every schedule with its parameters and origin, the presets and the
workloads (built-in and installed plug-ins)."""

from __future__ import annotations

import argparse
import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

from clrbench.config.presets import PRESET_HELP, PRESETS
from clrbench.config.workloads import BUILT_IN, NamedWorkload, named
from clrbench.data import plugin
from clrbench.errors import ClrbenchError
from clrbench.schedules import catalog

CODE = re.compile(r"``(.+?)``")  # reStructuredText inline code, as the docstrings write it


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` subcommand."""
    p = subparsers.add_parser("list", help="show the schedules, presets and workloads")
    p.set_defaults(func=list_command)


def doc_text(doc: str) -> Text:
    """A schedule's one-line doc for the table: its ``code`` as code (bold in a terminal,
    plain in a pipe), not as markup."""
    text = Text()
    for i, part in enumerate(CODE.split(doc)):
        text.append(part, style="bold" if i % 2 else "")
    return text


def new_table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")  # a narrow terminal wraps; nothing is cut
    return table


def print_table(console: Console, table: Table) -> None:
    """In a terminal, the table fits its width; piped, each row is one line of its own cells
    joined by `` | `` (grep finds a row whole, and no row is padded to the widest)."""
    if console.is_terminal:
        console.print(table)
        return
    print(table.title, file=console.file)
    cells = [[str(cell) for cell in column._cells] for column in table.columns]
    for row in zip(*cells, strict=True):
        print("  " + " | ".join(row), file=console.file)
    print(file=console.file)


def list_command(args: argparse.Namespace) -> int:
    """Print the schedule registry and the presets with their schedule labels."""
    console = Console()
    table = new_table(
        "Schedules: clrbench.schedules.make(name, **params); steps count iterations",
        ("name", "parameters", "what it does", "from"),
    )
    for name, params, doc, origin in catalog(keras=True):
        shown = ", ".join(p if default is None else f"{p}={default}" for p, default, _ in params)
        table.add_row(name, shown, doc_text(doc), origin)
    print_table(console, table)
    presets = new_table(
        "Presets (python -m clrbench run --preset NAME)",
        ("preset", "what", "schedules (label = name)"),
    )
    for name, experiment in PRESETS.items():
        labels = ", ".join(f"{s['label']} = {s['name']}" for s in experiment["schedule"])
        presets.add_row(name, PRESET_HELP[name], labels)
    print_table(console, presets)
    workloads = new_table(
        "Workloads (python -m clrbench run --workload NAME[,NAME...])",
        ("workload", "what", "epochs", "batch", "rates: constant; cycle", "target"),
    )
    for found in [*BUILT_IN.values(), *(_installed(name) for name in plugin.entry_points())]:
        target = "data-driven" if found.target is None else f"{found.target * 100:g}%"
        rates = f"{found.constant_lr:g}; {found.base_lr:g}-{found.max_lr:g}"
        row = (found.name, found.about, str(found.epochs), str(found.batch_size), rates, target)
        workloads.add_row(*row)
    print_table(console, workloads)
    return 0


def _installed(name: str) -> NamedWorkload:
    """An installed plug-in's row; one that cannot load says why instead of stopping the list."""
    try:
        return named(name)
    except ClrbenchError as error:
        return NamedWorkload(name, "?", "?", 0, 0, None, 0, 0, 0, f"cannot load: {error}")
