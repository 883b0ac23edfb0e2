"""``clrbench list``: every schedule with its parameters and origin, the presets and the
workloads (built-in and installed plug-ins)."""

from __future__ import annotations

import argparse
import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

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
    """Print the schedule registry, the presets with their schedule labels and the workloads
    (``clrbench.catalog``)."""
    import pandas as pd

    import clrbench

    found = clrbench.catalog()
    console = Console()
    table = new_table(
        "Schedules: clrbench.schedules.make(name, **params); steps count iterations",
        ("name", "parameters", "what it does", "from"),
    )
    for row in found.schedules.itertuples():
        table.add_row(row.name, row.parameters, doc_text(row.doc), row.origin)
    print_table(console, table)
    presets = new_table(
        "Presets (python -m clrbench run --preset NAME)",
        ("preset", "what", "schedules (label = name)"),
    )
    for row in found.presets.itertuples():
        presets.add_row(row.preset, row.about, row.schedules)
    print_table(console, presets)
    workloads = new_table(
        "Workloads (python -m clrbench run --workload NAME[,NAME...])",
        ("workload", "what", "epochs", "batch", "rates: constant; cycle", "target"),
    )
    for w in found.workloads.itertuples():
        target = "data-driven" if pd.isna(w.target) else f"{w.target * 100:g}%"
        rates = f"{w.constant_lr:g}; {w.base_lr:g}-{w.max_lr:g}"
        workloads.add_row(w.workload, w.about, str(w.epochs), str(w.batch_size), rates, target)
    print_table(console, workloads)
    return 0
