"""Connection guards for the daemon's HTTP server, below the ASGI app.

uvicorn leaves gaps a local user without the token could use to deny service: it never
times out a connection that sends nothing, httptools takes headers of any size, and nothing
caps open connections. ``protocol_class(http, limits)`` returns uvicorn's protocol class
with these guards, for ``uvicorn.Config(http=...)``:

* a request head over ``max_head`` bytes is answered 431 and the connection closed;
* a head not complete within ``head_timeout`` seconds (from connecting, or from its first
  byte on a kept-alive connection) closes the connection;
* a connection that has not shown the token is closed after each answer, so clients
  without it cannot hold connections open (with ``vouching`` (den_auth) the app may vouch
  for another token, which Den approved: its connection then counts as having shown it);
* past ``max_connections`` the oldest connection still without the token and idle is
  closed to make room, or else the new one is refused (503).

    limits = Limits(head_timeout=10, max_connections=4096, authorization=b"Bearer ...")
    uvicorn.Config(app, http=protocol_class("httptools", limits), ws="none", ...)

Idle keep-alive connections are closed by uvicorn's own ``timeout_keep_alive``. Per request
the guards cost a flag check or two; timers are armed only for heads that arrive in pieces.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import resource
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from runhouse.daemon.den_auth import VOUCH

log = logging.getLogger("runhouse.daemon")
MAX_HEAD = 64 * 1024
_LINGER = 2.0  # seconds to read (and drop) what a refused client still sends, so it sees why
_WARN_EVERY = 60.0
_RESERVED_FDS = 64  # for workers, logs and the loop, however low the file limit


@dataclass(frozen=True)
class Limits:
    """What the guards allow; ``authorization`` is the header value that proves the token
    (None: the daemon has no token and every connection is trusted); ``vouching``: the app
    may vouch for other tokens (through a callback in the scope under ``den_auth.VOUCH``)."""

    max_head: int = MAX_HEAD
    head_timeout: float = 10.0  # 0 or less: no limit
    max_connections: int = 4096
    authorization: bytes | None = None
    vouching: bool = False


def raise_file_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # e.g. macOS caps the soft limit below an infinite hard
            pass
    return soft


def connection_cap(wanted: int, file_limit: int) -> int:
    """The connection cap: ``wanted``, but held well below the file limit."""
    if file_limit == resource.RLIM_INFINITY:
        return max(1, wanted)
    headroom = max(_RESERVED_FDS, file_limit // 4)
    return max(1, min(wanted, file_limit - headroom))


class _Discard:
    """Stands in for the parser of a refused connection: what still arrives is dropped."""

    def feed_data(self, data: bytes) -> None:
        """Drop ``data``."""


class _Guards:
    """What the guarded protocols share; the subclasses hook it into their parser."""

    limits: ClassVar[Limits]
    waiting: ClassVar[dict[Any, None]]  # connections without the token yet, oldest first
    warned: ClassVar[list[float]]
    # Provided by uvicorn's protocol classes:
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set[Any]
    cycle: Any
    headers: list[tuple[bytes, bytes]]
    parser: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Connected: admit the connection (or refuse it)."""
        super().connection_made(transport)  # type: ignore[misc]
        self._admit()

    def connection_lost(self, exc: Exception | None) -> None:
        """Disconnected."""
        self._forget()
        super().connection_lost(exc)  # type: ignore[misc]

    def _guards_init(self) -> None:
        self._trusted = self.limits.authorization is None
        self._head_timer: asyncio.TimerHandle | None = None

    def _admit(self) -> None:
        """Called once connected: count the connection against the cap, start the head
        clock."""
        if not self._trusted:
            self.waiting[self] = None
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self._warn("refusing connections: %d open (max_connections)", len(self.connections))
            self._answer_and_close(503, "the daemon has too many open connections\n", linger=False)
            return
        self._arm_head_timer()

    def _make_room(self) -> bool:
        for other in self.waiting:
            if other is not self and other._idle() and not other.transport.is_closing():
                self._warn("at max_connections: closing idle connections without the token")
                other.transport.close()
                return True
        return False

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _forget(self) -> None:
        """Called when the connection is lost."""
        self.waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is None and self.limits.head_timeout > 0:
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._idle():
            # The start of a pipelined request during a response: its clock starts over.
            self._arm_head_timer()
            return
        self.transport.close()

    def _head_received(self) -> None:
        """Called once a request head is complete."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._trusted:
            return
        expected = self.limits.authorization
        for name, value in self.headers:
            if name == b"authorization" and expected and hmac.compare_digest(value, expected):
                self._trusted = True
                self.waiting.pop(self, None)
                return
        cycle = self.cycle
        if cycle is not None:
            if self.limits.vouching:
                cycle.scope[VOUCH] = functools.partial(self._vouch, cycle, cycle.keep_alive)
            cycle.keep_alive = False  # answered (401, 403 or a public route), then closed

    def _vouch(self, cycle: Any, keep_alive: bool) -> None:
        """The app let this request's token in (Den approved it): trust the connection, and
        keep it open after this answer if the client asked to."""
        self._trusted = True
        self.waiting.pop(self, None)
        cycle.keep_alive = keep_alive

    def _answer_and_close(self, status: int, message: str, linger: bool = True) -> None:
        body = message.encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "content-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.parser = _Discard()
        self.transport.write(head.encode() + body)
        # Closing with unread input resets the connection, and the client may lose the
        # answer: half-close instead and drop what it still sends, for a moment.
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER, self.transport.close)
        else:
            self.transport.close()

    def _warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.warned[0] >= _WARN_EVERY:
            self.warned[0] = now
            log.warning(message, *args)


class GuardedHttpToolsProtocol(_Guards, HttpToolsProtocol):
    """uvicorn's httptools protocol with the guards (head size counted before parsing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guards_init()
        self._in_head = False
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        """Bytes in: parsed, then checked if a request head is still incomplete."""
        super().data_received(data)
        if self._in_head:
            self._partial_head(len(data))

    def _partial_head(self, size: int) -> None:
        if self.transport.is_closing():
            return
        self._head_bytes += size
        if self._head_bytes > self.limits.max_head:
            self._in_head = False
            self._answer_and_close(431, f"request head over {self.limits.max_head} bytes\n")
            return
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        """A request starts."""
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        """A request head is complete."""
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        self._head_received()


class GuardedH11Protocol(_Guards, H11Protocol):
    """uvicorn's h11 protocol with the guards (h11 bounds the head size itself:
    ``h11_max_incomplete_event_size``, answered 400)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guards_init()

    def data_received(self, data: bytes) -> None:
        """Bytes in: a new request's head is checked; part of one starts its clock."""
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:
            self._head_received()
        elif self._idle() and not self.transport.is_closing():
            self._arm_head_timer()


_BASES: dict[str, type[_Guards]] = {
    "httptools": GuardedHttpToolsProtocol,
    "h11": GuardedH11Protocol,
}


def protocol_class(http: str, limits: Limits) -> type[asyncio.Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)``: ``http`` ("httptools" or "h11")
    with the guards, under ``limits`` (one class per server: it holds the server's limits)."""
    base = _BASES[http]
    namespace = {"limits": limits, "waiting": {}, "warned": [float("-inf")]}
    return type(base.__name__, (base,), namespace)
