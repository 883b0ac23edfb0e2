"""Command line: ``python -m clrbench {run,report,baseline,check,lr-find,list,export,study}``.

Each subcommand lives in the module that owns its work and contributes a ``register``
function here. Exit codes: 0 ok, 1 failed runs or a regression, 2 bad input
(a ClrbenchError, printed as one line without a traceback), 130 on SIGINT, 143 on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

from clrbench import __version__, quiet
from clrbench.errors import ClrbenchError, Interrupted, ResultsWarning

# module whose `register(subparsers)` adds the command(s); imported lazily so that a
# command only pays for what it uses (no TensorFlow for report/check/list).
COMMAND_MODULES = (
    "clrbench.cli.run",
    "clrbench.cli.report",
    "clrbench.cli.gate",
    "clrbench.cli.lrfind",
    "clrbench.cli.listing",
    "clrbench.cli.export",
    "clrbench.cli.study",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m clrbench",
        description="Benchmark learning-rate schedules (constant, step decay, cyclical...) "
        "on MNIST with Keras, across seeds, and report whether the differences are real.",
    )
    parser.add_argument("--version", action="version", version=f"clrbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` for commands that start TensorFlow."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let TensorFlow print its start-up and retracing messages (hidden by default)",
    )


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """clrbench's own warnings as one plain line; everything else as Python shows it."""
    if issubclass(category, ResultsWarning):
        print(f"clrbench: warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the command, map errors to exit codes."""
    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    # TensorFlow's start-up chatter (CUDA probing, oneDNN notes) is noise for a CPU benchmark;
    # `--verbose` (run, lr-find) brings it back. Workers inherit the choice.
    quiet.set_verbose(getattr(args, "verbose", False))
    try:
        with stop_on_signals():
            return int(args.func(args) or 0)
    except ClrbenchError as exc:
        print(f"clrbench: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `clrbench list | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit would fail again
        return 0
    except KeyboardInterrupt as exc:  # SIGINT or SIGTERM (Interrupted)
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"clrbench: {getattr(exc, 'message', None) or 'interrupted'}", file=sys.stderr)
        return 128 + signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` in the main thread; once one has arrived,
    further ones are ignored so that the cleanup (stopping workers) is not cut short."""
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            for s in previous:
                signal.signal(s, signal.SIG_IGN)
            raise Interrupted(signum)

        for s in previous:
            signal.signal(s, handler)
    else:
        previous = {}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
