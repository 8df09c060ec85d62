"""The daemon's end of a worker's socket, whatever started the worker (a child process, a Ray
actor): routed frames in, one stream per request, and the death of the connection.

An engine subclasses ``SocketWorker`` with the worker's ``pid``, ``_death_cause`` (how it
ended, asked once the connection is gone) and ``_end`` (make it end, for ``stop``):

    _, protocol = await loop.create_unix_connection(FrameProtocol, sock=sock)
    worker = ProcessWorker(env, proc, protocol, on_death)   # a SocketWorker
"""

from __future__ import annotations

import asyncio
import itertools
from abc import abstractmethod
from typing import Any

from runhouse.daemon.engines.base import EnvSpec, Frame, OnDeath, Stream, WorkerHandle
from runhouse.exceptions import WorkerDiedError
from runhouse.wire import errors
from runhouse.wire.frames import HEADER, KINDS, ROUTED_HEADER, TERMINAL, Kind, request_prefix

_COPY_BELOW = 1 << 16
STOPPED = "the worker was stopped"


class FrameProtocol(asyncio.Protocol):
    """Parses routed frames as bytes arrive and hands each to its worker, without awaits."""

    def __init__(self) -> None:
        self.worker: SocketWorker | None = None
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._can_write: asyncio.Future[None] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport, for the worker's writes."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Hand every complete frame in ``data`` (and what was pending) to the worker."""
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
        """The worker is gone (or was stopped): its calls fail."""
        self.lost = True
        if self.worker is not None:
            asyncio.get_running_loop().create_task(self.worker._died())
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def pause_writing(self) -> None:
        """The socket's write buffer is full: ``drain`` waits from now on."""
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """The write buffer has room again."""
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    async def drain(self) -> None:
        """Wait while the socket's write buffer is full."""
        if self._can_write is not None:
            await self._can_write


class SocketWorker(WorkerHandle):
    """A worker reached over a connected socket that speaks routed frames."""

    def __init__(self, env: EnvSpec, protocol: FrameProtocol, on_death: OnDeath) -> None:
        self.env = env
        self._protocol = protocol
        self._transport = protocol.transport
        self._on_death = on_death
        self._streams: dict[int, Stream] = {}
        self._ids = itertools.count(1)
        self._alive = True
        self._died_once = False
        protocol.worker = self
        if protocol.lost:  # it went away before this handle existed
            asyncio.get_running_loop().create_task(self._died())

    @property
    def alive(self) -> bool:
        """Whether the worker is running and connected."""
        return self._alive

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._streams)

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
        """Close the connection and end the worker (its in-flight calls fail)."""
        self._alive = False
        if self._transport is not None:
            self._transport.close()
        await self._end()

    def disconnect(self) -> None:
        """Close the connection now (the worker is known to be gone): its calls fail, and
        ``on_death`` runs with ``_death_cause``."""
        if self._transport is not None:
            self._transport.close()

    @abstractmethod
    async def _end(self) -> None:
        """Make the worker end and wait until it has (for ``stop``)."""

    @abstractmethod
    async def _death_cause(self) -> str:
        """How the worker ended, for a worker whose connection closed while it was alive."""

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
        try:
            cause = await self._death_cause() if was_alive else STOPPED
        except Exception as exc:  # the calls must fail all the same, never wait forever
            cause = f"it ended, and asking how failed ({exc!r})"
        frame = self._death_frame(cause)
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.put(frame)
        if was_alive:
            self._on_death(self, cause)

    def _death_frame(self, cause: str) -> Frame:
        payload = errors.pack(WorkerDiedError(self.env.name, self.pid, cause))
        return Frame(Kind.ERROR, HEADER.pack(Kind.ERROR, len(payload)), payload)
