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
from runhouse.wire.frames import HEADER, KINDS, ROUTED_HEADER, TERMINAL, Kind, request_prefix

_COPY_BELOW = 1 << 16


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


class _FrameProtocol(asyncio.Protocol):
    """Parses routed frames as bytes arrive and hands each to its worker, without awaits."""

    def __init__(self) -> None:
        self.worker: ProcessWorker | None = None
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._can_write: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        # Usually whole frames arrive and nothing is pending: parse them straight from
        # ``data``, and buffer only an incomplete tail.
        size = ROUTED_HEADER.size
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < size or len(buffer) - size < ROUTED_HEADER.unpack_from(buffer)[2]:
                return  # the pending frame is still incomplete (a large one, in pieces)
            data = bytes(buffer)
            buffer.clear()
        start = 0
        end = len(data)
        while end - start >= size:
            call_id, kind, length = ROUTED_HEADER.unpack_from(data, start)
            if end - start - size < length:
                break
            payload = data[start + size : start + size + length]
            start += size + length
            if self.worker is not None:
                self.worker._on_frame(call_id, kind, length, payload)
        if start < end:
            buffer += data[start:]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            asyncio.get_running_loop().create_task(self.worker._died())
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def pause_writing(self) -> None:
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    async def drain(self) -> None:
        """Wait while the socket's write buffer is full."""
        if self._can_write is not None:
            await self._can_write


class ProcessWorker(WorkerHandle):
    """A worker process and the daemon's end of its socket."""

    def __init__(
        self,
        env: EnvSpec,
        proc: subprocess.Popen[bytes],
        protocol: _FrameProtocol,
        on_death: OnDeath,
    ) -> None:
        self.env = env
        self._proc = proc
        self._protocol = protocol
        self._transport = protocol.transport
        self._on_death = on_death
        self._streams: dict[int, Stream] = {}
        self._ids = itertools.count(1)
        self._alive = True
        self._died_once = False
        protocol.worker = self

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
        self.requests += 1
        call_id = next(self._ids) & 0xFFFFFFFF
        stream = Stream(call_id)
        if not self._alive or self._transport is None:
            stream.put(self._death_frame("the worker is not running"))
            return stream
        self._streams[call_id] = stream
        prefix = request_prefix(call_id, request, len(body))
        if len(body) <= _COPY_BELOW:
            self._transport.write(prefix + body)
        else:
            self._transport.write(prefix)
            self._transport.write(body)
        return stream

    async def drain(self) -> None:
        """Wait while a large request is still being written."""
        await self._protocol.drain()

    def abandon(self, stream: Stream) -> None:
        """Forget a request's stream; frames the worker still sends for it are dropped."""
        self._streams.pop(stream.call_id, None)

    async def stop(self) -> None:
        """Terminate the worker, then kill it if it does not exit promptly."""
        self._alive = False
        if self._transport is not None:
            self._transport.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._proc.wait, 3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await loop.run_in_executor(None, self._proc.wait)

    def _on_frame(self, call_id: int, kind: int, length: int, payload: bytes) -> None:
        stream = self._streams.get(call_id)
        if stream is None:
            return
        if kind in TERMINAL:
            del self._streams[call_id]
        stream.put(Frame(KINDS[kind], HEADER.pack(kind, length), payload))

    async def _died(self) -> None:
        if self._died_once:
            return
        self._died_once = True
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
        _, protocol = await loop.create_unix_connection(_FrameProtocol, sock=parent)
        return ProcessWorker(env, proc, protocol, on_death)
