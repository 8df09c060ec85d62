"""Start, find and stop the daemon on this machine (``runhouse start|stop``, ``rh.here``).

A background start runs ``python -m runhouse.daemon`` in its own session, logging to
``daemon.log``, and waits on a pipe until the daemon says it is listening: no polling.
Stopping sends SIGTERM, then waits for the daemon's single-instance lock to be released,
which happens when the process exits, whatever state it is left in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from runhouse import fileio
from runhouse.daemon.layout import DaemonFiles, default_dir
from runhouse.exceptions import DaemonError
from runhouse.wire.engine import EngineChoice
from runhouse.wire.exposure import Exposure

DEFAULT_PORT = 32300
LOOPBACK = Exposure()
PROCESSES = EngineChoice()
_children: dict[int, subprocess.Popen[bytes]] = {}


def files_for(root: Path | None = None) -> DaemonFiles:
    """The daemon files in ``root`` (default: the ``daemon_dir`` setting)."""
    return DaemonFiles(root or default_dir())


def running_info(files: DaemonFiles) -> dict[str, Any] | None:
    """The running daemon's info (pid, host, port), or None if none runs."""
    _reap_exited()
    info = files.read_info()
    if info is None:
        return None
    pid = int(info.get("pid", 0))
    if not _alive(pid):
        _reap(pid)
        return None
    return info


def start(
    files: DaemonFiles,
    port: int = DEFAULT_PORT,
    how: Exposure = LOOPBACK,
    timeout: float = 60,
    engine: EngineChoice = PROCESSES,
) -> dict[str, Any]:
    """Start the daemon in the background and wait until it listens; returns its info."""
    problem = how.problem() or engine.problem()
    if problem is not None:
        raise DaemonError(f"Not starting the daemon: {problem}")
    files.ensure_root()
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "runhouse.daemon", *how.argv(), *engine.argv()]
    command += ["--port", str(port)]
    command += ["--dir", str(files.root), "--ready-fd", str(write_end)]
    with open(files.log, "ab") as log:
        proc = subprocess.Popen(
            command,
            pass_fds=[write_end],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RH_DAEMON_DIR": str(files.root)},
        )
    os.close(write_end)
    try:
        line = fileio.read_line(read_end, timeout)
    finally:
        os.close(read_end)
    if not line.startswith("ready"):
        code = proc.poll()
        if code is None:
            proc.kill()
        proc.wait()
        raise DaemonError(
            f"The daemon did not start (exit code {code}). Last lines of {files.log}:\n"
            + fileio.tail(files.log)
        )
    _children[proc.pid] = proc
    info = files.read_info()
    if info is None:
        raise DaemonError(f"The daemon started but wrote no {files.info}")
    return info


def stop(files: DaemonFiles, timeout: float = 15) -> bool:
    """Stop the running daemon and its workers; returns whether one was running."""
    info = running_info(files)
    if info is None:
        return False
    pid = int(info["pid"])
    _signal(pid, signal.SIGTERM)
    if not _wait_for_exit(files, timeout):
        _signal(pid, signal.SIGKILL)
        _wait_for_exit(files, timeout)
    _reap(pid)
    files.clear_info()
    return True


def _wait_for_exit(files: DaemonFiles, timeout: float) -> bool:
    # The daemon holds its lock until the process is gone; taking it means it has exited.
    fd = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o600)
    acquired = threading.Event()

    def take() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        acquired.set()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    threading.Thread(target=take, daemon=True, name="rh-wait-daemon").start()
    return acquired.wait(timeout)


def _reap(pid: int) -> None:
    # A daemon this process started and that died is our child: collect its exit status.
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()


def _reap_exited() -> None:
    # Daemons this process started may have exited on their own (SIGTERM, crash).
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    # A pidfile can outlive its daemon and the pid be reused: check it is still ours.
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"runhouse" not in f.read():
                return False
        with open(f"/proc/{pid}/stat") as f:
            # The state follows the parenthesised command name; Z is a zombie (exited).
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
