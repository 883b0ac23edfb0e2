"""The one way clrbench writes to disk: into a temporary name beside the target, then rename.

A reader (a resumed suite, ``report``, ``check``, a person) therefore sees either the old
complete file or the new complete file, never a half-written one, whatever happens during the
write: an exception, a full disk, a file-size limit, ``kill -9``, a power cut (files are
fsync'ed before the rename). Temporary names start with a dot and contain ``.tmp-`` so that
leftovers of a killed process are recognisable (``is_temporary``) and never loaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".tmp-"


def temporary_name(final: Path) -> Path:
    """A unique hidden name in ``final``'s folder, keeping its suffix (formats follow it)."""
    unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return final.with_name(f".{final.stem}{TMP_MARK}{unique}{final.suffix}")


def is_temporary(path: Path) -> bool:
    """True for a name made by ``temporary_name`` (or a run folder's temporary name)."""
    return path.name.startswith(".") and TMP_MARK in path.name


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done (main thread; elsewhere a no-op).

    An interrupt then lands after a write, never inside it: a KeyboardInterrupt raised between
    creating a temporary name and the cleanup that follows (or inside that cleanup) would
    otherwise leave the temporary file or folder behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; rename it into place on success.

    On any exception the temporary file is removed and ``path`` is left as it was; SIGINT and
    SIGTERM are held until the write is done.
    """
    final = Path(path)
    tmp = temporary_name(final)
    with _signals_held():
        try:
            yield tmp
            _fsync(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``path`` as a whole.

    An existing ``path`` is moved aside first and removed only once the new folder is in
    place (it is moved back if that fails). On any exception the temporary folder is removed
    and ``path`` is left as it was; SIGINT and SIGTERM are held until the write is done.
    """
    final = Path(path)
    tmp = temporary_name(final)
    with _signals_held():
        try:
            tmp.mkdir(parents=True)
            yield tmp
            for file in tmp.iterdir():
                _fsync(file)
            _swap_in(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, final: Path) -> None:
    if not final.exists():
        tmp.rename(final)
        return
    old = temporary_name(final)
    final.rename(old)
    try:
        tmp.rename(final)
    except BaseException:
        old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)
