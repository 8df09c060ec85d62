"""The Ray head a daemon starts for itself (``--engine ray`` without ``--ray-address``).

``ray start --head --block`` runs as the daemon's child, in the foreground: SIGTERM makes it
stop every Ray process it started, and the kernel sends it that SIGTERM if the daemon dies
first (``PR_SET_PDEATHSIG``), so no Ray process outlives the daemon. Its files go to a short
temporary folder (Ray's Unix socket paths must stay under 108 bytes), removed at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from runhouse import fileio
from runhouse.exceptions import EngineError

log = logging.getLogger("runhouse.daemon")
READY = "Ray runtime started"  # what `ray start --block` prints once the head is up
START_TIMEOUT = 90.0  # seconds for the head to come up (about 4 s on an idle machine)
STOP_TIMEOUT = 20.0  # seconds for it to stop its processes after SIGTERM
_TEMP_MAX = 40  # characters of the temporary folder's path (Ray adds about 65)
_PR_SET_PDEATHSIG = 1


class RayHead:
    """A running ``ray start --head --block`` child; ``address`` is its GCS ``ip:port``."""

    def __init__(self, proc: subprocess.Popen[bytes], temp_dir: Path, log: Path) -> None:
        self.proc = proc
        self.temp_dir = temp_dir
        self.log = log
        self.address: str | None = None
        self.stopping = False

    @classmethod
    def launch(cls, log: Path) -> RayHead:
        """Start the head (from the thread that lives as long as the daemon: the kernel's
        parent-death signal follows the thread that started the child)."""
        temp_dir = Path(tempfile.mkdtemp(prefix="rh-ray-"))
        if len(str(temp_dir)) > _TEMP_MAX:
            shutil.rmtree(temp_dir, ignore_errors=True)
            temp_dir = Path(tempfile.mkdtemp(prefix="rh-ray-", dir="/tmp"))
        command = start_command("--head", "--port", "0", "--temp-dir", str(temp_dir))
        command.append("--include-dashboard=false")
        environ = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:  # this run's log only: READY is looked for in it
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
                preexec_fn=_die_with_parent,
            )
        return cls(proc, temp_dir, log)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        """Block until the head is up; its GCS address. ``EngineError`` (with the end of its
        log) if it exits or is not up within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        marker = self.temp_dir / "ray_current_cluster"  # Ray writes the GCS address there
        while True:
            code = self.proc.poll()
            if code is not None:
                raise EngineError("ray", self._failure(f"exited with code {code}"))
            if READY in _read(self.log) and marker.exists():
                self.address = marker.read_text().strip()
                return self.address
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError("ray", self._failure(f"was not up after {timeout:g} s"))
            time.sleep(0.1)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the head (it stops its Ray processes), kill what is left past ``timeout``
        seconds, and remove its temporary folder."""
        self.stopping = True
        if self.proc.poll() is None:
            children = descendants(self.proc.pid)
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in [self.proc.pid, *children, *descendants(self.proc.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def watch(self) -> None:
        """Log an error if the head exits before ``stop`` (on a thread of its own)."""

        def wait() -> None:
            code = self.proc.wait()
            if not self.stopping:
                log.error(
                    "the Ray head this daemon started exited (code %s): env workers cannot "
                    "start until the daemon restarts. See %s",
                    code,
                    self.log,
                )

        threading.Thread(target=wait, name="rh-ray-head", daemon=True).start()

    def _failure(self, what: str) -> str:
        return f"The Ray head this daemon starts {what}. Last lines of {self.log}:\n" + fileio.tail(
            self.log
        )


def descendants(pid: int) -> list[int]:
    """The ids of every live process under ``pid`` (children, theirs, and so on)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _die_with_parent() -> None:
    # In the child, before exec: SIGTERM when the daemon dies, even by SIGKILL.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_command(*args: str) -> list[str]:
    """``ray start --block`` on this Python with ``args`` (``--head`` for a head), without
    usage stats, and on free ports where Ray would take fixed ones."""
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", *args]
    return [*command, "--disable-usage-stats", *spare_ports(head="--head" in args)]


def spare_ports(head: bool = True) -> list[str]:
    """Free ports for the Ray servers that otherwise take fixed ones (its client server,
    10001, and the dashboard agent, 52365): a second Ray node on a host would fail on them."""
    flags = ["--dashboard-agent-listen-port", str(_free_port())]
    if head:
        flags += ["--ray-client-server-port", str(_free_port())]
    return flags


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
