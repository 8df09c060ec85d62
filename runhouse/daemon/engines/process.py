"""The process engine: each env's worker is a child process on a socketpair.

Death is noticed at once, as end-of-file on the socket; the exit status then names the
cause (a signal, an exit code) in the error that fails the worker's in-flight calls.
"""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from runhouse.daemon.engines import placement
from runhouse.daemon.engines.base import Engine, EnvSpec, OnDeath, WorkerHandle
from runhouse.daemon.engines.socket_worker import FrameProtocol, SocketWorker
from runhouse.exceptions import PlacementError

NODE = "local"  # the one node of this engine: the daemon's own machine


def exit_cause(returncode: int | None) -> str:
    """A person's description of how a process ended."""
    if returncode is None:
        return "it stopped responding and was killed"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGSEGV":
            return "it crashed with a segmentation fault (SIGSEGV)"
        return f"it was killed by {name}"
    return f"it exited with code {returncode}"


class ProcessWorker(SocketWorker):
    """A worker process and the daemon's end of its socket."""

    def __init__(
        self,
        env: EnvSpec,
        proc: subprocess.Popen[bytes],
        protocol: FrameProtocol,
        on_death: OnDeath,
    ) -> None:
        self._proc = proc
        super().__init__(env, protocol, on_death)

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._proc.pid

    @property
    def node(self) -> str | None:
        """This machine (the engine's only node)."""
        return NODE

    async def _end(self) -> None:
        # Terminate, then kill if it does not exit promptly.
        if self._proc.poll() is None:
            self._proc.terminate()
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._proc.wait, 3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await loop.run_in_executor(None, self._proc.wait)

    async def _death_cause(self) -> str:
        loop = asyncio.get_running_loop()
        try:
            returncode: int | None = await loop.run_in_executor(None, self._proc.wait, 2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            returncode = None
        return exit_cause(returncode)


class ProcessEngine(Engine):
    """Starts each env's worker as a child process of the daemon."""

    name = "process"

    async def nodes(self) -> list[dict[str, Any]]:
        """This machine: its CPUs, memory and GPUs, and its load."""
        return [
            {
                "id": NODE,
                "address": socket.gethostname(),
                "head": True,
                "alive": True,
                "resources": machine_resources(),
                "available": None,
                "load_1m": os.getloadavg()[0],
            }
        ]

    async def check(self, env: EnvSpec) -> None:
        """Raise ``PlacementError`` if this machine lacks what ``env`` asks for."""
        if env.compute:
            why = placement.problem(env.compute, await self.nodes())
            if why is not None:
                raise PlacementError(env.name, env.compute, why)

    async def launch(self, env: EnvSpec, on_death: OnDeath, replica: int = 0) -> WorkerHandle:
        """Start a worker process for ``env`` and connect to it (replicas alike: one host)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        python = env.python or sys.executable
        command = [python, "-m", "runhouse.daemon.worker", "--fd", str(child.fileno())]
        command += ["--env", env.name]
        environ = {**os.environ, **env.env_vars}
        if env.pythonpath:
            inherited = [environ["PYTHONPATH"]] if environ.get("PYTHONPATH") else []
            environ["PYTHONPATH"] = os.pathsep.join([*env.pythonpath, *inherited])
        try:
            proc = subprocess.Popen(
                command,
                pass_fds=[child.fileno()],
                env=environ,
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_unix_connection(FrameProtocol, sock=parent)
        return ProcessWorker(env, proc, protocol, on_death)


def machine_resources() -> dict[str, float]:
    """This machine's CPUs, memory in bytes and NVIDIA GPUs (named as Ray names them)."""
    resources: dict[str, float] = {
        "CPU": float(os.cpu_count() or 1),
        "memory": float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
    }
    gpus = len(glob.glob("/dev/nvidia[0-9]*"))
    if gpus:
        resources["GPU"] = float(gpus)
    return resources
