"""Atomic file writes and cross-process directory locks.

The local store and ``~/.rh/config.yaml`` are written by several processes at once (a
notebook, a script, a CLI call); these two tools are what keep them from tearing a file or
losing an update.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


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
