"""Atomic file writes and cross-process directory locks, and the two reads a parent makes of
a server it starts (the daemon, Den): its "ready" line on a pipe, and the end of its log.

The local store and ``~/.rh/config.yaml`` are written by several processes at once (a
notebook, a script, a CLI call); atomic writes and locks keep them from tearing a file or
losing an update.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if the file is missing, not JSON, or not an object
    (a server's info file, read while the server may be writing or removing it)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def hold_lock(path: Path) -> int | None:
    """A descriptor holding an exclusive lock on ``path`` (made mode 600 if missing) for as
    long as it stays open; None if another process holds it (one server per folder)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def locked_dir(path: Path) -> Iterator[Path]:
    """Hold an exclusive lock on directory ``path`` (created if missing) for the block.

    Locks the directory itself rather than a lock file, so that nothing extra appears in a
    folder that users keep in git. If another process removed and re-created the directory
    while we waited, the lock we got is on a dead inode, so we take it again.
    """
    while True:
        path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue  # removed between mkdir and open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(os.fstat(fd), current):
                yield path
                return
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def read_line(fd: int, timeout: float) -> str:
    """The first line a child writes on pipe ``fd`` within ``timeout`` seconds; "" if none
    comes (it is silent, or exited first)."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return ""
        chunk = os.read(fd, 65536)
        if not chunk:  # the child closed the pipe (it exited) without a line
            return ""
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace")


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("(no log)" if there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
