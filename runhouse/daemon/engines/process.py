"""The process engine: each env's worker is a child process on a socketpair.

Death is noticed at once, as end-of-file on the socket; the exit status then names the
cause (a signal, an exit code) in the error that fails the worker's in-flight calls.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from runhouse.daemon.engines.base import Engine, EnvSpec, Frame, OnDeath, Stream, WorkerHandle
from runhouse.exceptions import WorkerDiedError
from runhouse.wire import errors
from runhouse.wire.frames import HEADER, REQUEST_HEADER, ROUTED_HEADER, TERMINAL, Kind

_DRAIN_ABOVE = 1 << 20


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


class ProcessWorker(WorkerHandle):
    """A worker process and the daemon's end of its socket."""

    def __init__(
        self,
        env: EnvSpec,
        proc: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_death: OnDeath,
    ) -> None:
        self.env = env
        self._proc = proc
        self._reader = reader
        self._writer = writer
        self._on_death = on_death
        self._streams: dict[int, Stream] = {}
        self._ids = itertools.count(1)
        self._alive = True
        self._task = asyncio.get_running_loop().create_task(self._read_frames())

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """Whether the worker process is running and connected."""
        return self._alive

    def open(self, request: dict[str, Any], body: bytes | memoryview = b"") -> Stream:
        """Send a request to the worker and return the stream its frames arrive on."""
        import json

        call_id = next(self._ids) & 0xFFFFFFFF
        stream = Stream(call_id)
        if not self._alive:
            stream.put(self._death_frame("the worker is not running"))
            return stream
        self._streams[call_id] = stream
        head = json.dumps(request).encode()
        size = REQUEST_HEADER.size + len(head) + len(body)
        self._writer.write(
            ROUTED_HEADER.pack(call_id, Kind.REQUEST, size) + REQUEST_HEADER.pack(len(head)) + head
        )
        if len(body):
            self._writer.write(body)
        return stream

    async def drain(self) -> None:
        """Wait while a large request is still being written."""
        if self._writer.transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await self._writer.drain()

    async def stop(self) -> None:
        """Terminate the worker, then kill it if it does not exit promptly."""
        self._alive = False
        self._writer.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._proc.wait, 3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await loop.run_in_executor(None, self._proc.wait)
        await self._task

    async def _read_frames(self) -> None:
        size = ROUTED_HEADER.size
        try:
            while True:
                header = await self._reader.readexactly(size)
                call_id, kind, length = ROUTED_HEADER.unpack(header)
                payload = await self._reader.readexactly(length) if length else b""
                stream = self._streams.get(call_id)
                if stream is None:
                    continue
                if kind in TERMINAL:
                    del self._streams[call_id]
                stream.put(Frame(Kind(kind), HEADER.pack(kind, length), payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        await self._died()

    async def _died(self) -> None:
        was_alive, self._alive = self._alive, False
        loop = asyncio.get_running_loop()
        try:
            returncode: int | None = await loop.run_in_executor(None, self._proc.wait, 2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            returncode = None
        cause = exit_cause(returncode) if was_alive else "the worker was stopped"
        frame = self._death_frame(cause)
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.put(frame)
        if was_alive:
            self._on_death(self, cause)

    def _death_frame(self, cause: str) -> Frame:
        payload = errors.pack(WorkerDiedError(self.env.name, self.pid, cause))
        return Frame(Kind.ERROR, HEADER.pack(Kind.ERROR, len(payload)), payload)


class ProcessEngine(Engine):
    """Starts each env's worker as a child process of the daemon."""

    async def launch(self, env: EnvSpec, on_death: OnDeath) -> WorkerHandle:
        """Start a worker process for ``env`` and connect to it."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = [sys.executable, "-m", "runhouse.daemon.worker", "--fd", str(child.fileno())]
        command += ["--env", env.name]
        try:
            proc = subprocess.Popen(
                command,
                pass_fds=[child.fileno()],
                env={**os.environ, **env.env_vars},
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
        return ProcessWorker(env, proc, reader, writer, on_death)
