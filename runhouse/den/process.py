"""Start Den in the background, find it, and stop it (``runhouse den start|stop|status``).

A background start runs ``python -m runhouse den start --foreground`` in its own session,
logging to ``den.log``, and waits on a pipe until Den says it listens (the first admin's
token comes through that pipe, so it is never written to the log). Whether a Den serves a
folder is told by its lock (held by the serving process), not by a pid that may be reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from runhouse import fileio
from runhouse.den.files import DenFiles
from runhouse.exceptions import DenServerError

_START_WITHIN = 60.0  # seconds a background start may take (migrations included)
_STOP_WITHIN = 15.0  # seconds after SIGTERM before SIGKILL


def serving(files: DenFiles) -> bool:
    """Whether a Den process holds this folder's lock."""
    try:
        fd = os.open(files.lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock if this call took it
    return False


def running_info(files: DenFiles) -> dict[str, Any] | None:
    """The serving Den's info (pid, url), or None if none serves this folder."""
    if not serving(files):
        return None
    return files.read_info() or {}


def start(files: DenFiles, argv: Sequence[str]) -> dict[str, Any]:
    """Start ``runhouse den start --foreground`` with ``argv`` in the background; returns
    its info once it listens (with "admin_token" set on a first start)."""
    files.ensure_root()
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "runhouse", "den", "start", "--foreground", *argv]
    command += ["--ready-fd", str(write_fd)]
    with files.log.open("ab") as log:
        os.chmod(files.log, 0o600)
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    os.close(write_fd)
    try:
        line = fileio.read_line(read_fd, _START_WITHIN)
    finally:
        os.close(read_fd)
    if line:
        return dict(json.loads(line))
    code = proc.poll()
    if code is None:
        proc.kill()
        proc.wait()
    raise DenServerError(
        f"Den did not start (exit code {proc.returncode}). The end of {files.log}:\n"
        + fileio.tail(files.log)
    )


def stop(files: DenFiles) -> bool:
    """Stop the Den serving this folder (SIGTERM, then SIGKILL); whether one was running."""
    info = running_info(files)
    if info is None:
        return False
    pid = int(info.get("pid", 0))
    if pid <= 0:
        raise DenServerError(
            f"a Den holds {files.lock} but {files.info} names no pid; stop it by hand"
        )
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_WITHIN
    while serving(files):
        if time.monotonic() > deadline:
            _signal(pid, signal.SIGKILL)
            deadline = time.monotonic() + _STOP_WITHIN
        time.sleep(0.05)
    files.clear_info()
    return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
