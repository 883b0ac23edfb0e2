"""One results folder, one writer: an exclusive lock held by ``run``, ``lr-find`` and ``study``.

The lock is ``filelock``'s (an ``flock`` on ``FOLDER/.clrbench.suite.lock``): the kernel releases it
when its holder dies, however it dies, so the lock of a killed process is taken over by the
next writer without any staleness guess. Who holds it (pid, host, command, since when) is kept
beside it in ``.clrbench.suite.lock.json`` so that a refused writer can say so in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from clrbench.errors import BusyError, ResultsError
from clrbench.store import atomic

LOCK_FILE = ".clrbench.suite.lock"
HOLDER_FILE = ".clrbench.suite.lock.json"


def writable_folder(folder: Path) -> Path:
    """Create ``folder`` if needed; ResultsError (one line) when it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = atomic.temporary_name(folder / "probe")
        probe.touch()
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ResultsError(f"{folder}: cannot write here ({reason})") from None
    return folder


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], command: str) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the block, or BusyError naming the holder.

    Re-entrant within one process (the lock object is a per-path singleton), so a library call
    that locks inside a command that already locked is fine.
    """
    folder = writable_folder(Path(folder))
    lock = FileLock(folder / LOCK_FILE, timeout=0, is_singleton=True)
    outermost = not lock.is_locked
    try:
        lock.acquire()
    except Timeout:
        holder = describe_holder(folder)
        raise BusyError(f"{folder}: in use by {holder}; wait for it or stop it") from None
    try:
        if outermost:
            record = {"pid": os.getpid(), "host": platform.node(), "command": command}
            record |= {"since": datetime.now(UTC).isoformat(timespec="seconds")}
            atomic.write_text(folder / HOLDER_FILE, json.dumps(record) + "\n")
        yield
    finally:
        if outermost:
            (folder / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def describe_holder(folder: Path) -> str:
    """``clrbench run (pid 123 on host, since ...)``, or what is known of it."""
    try:
        holder = json.loads((folder / HOLDER_FILE).read_text())
        return (
            f"clrbench {holder['command']} (pid {holder['pid']} on {holder['host']}, "
            f"since {holder['since']})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "another clrbench process (holder not recorded yet)"
