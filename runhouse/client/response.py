"""A daemon's answer as the client reads it: frames in, logs printed, items streamed.

>>> response = client.request("POST", "/add/call", payload, PICKLE, params)
>>> for kind, data in response.frames(): ...
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from http.client import HTTPConnection, HTTPResponse
from typing import Any

from runhouse.exceptions import DaemonError
from runhouse.wire import errors
from runhouse.wire.frames import HEADER, KINDS, Kind
from runhouse.wire.serialization import loads

_READ_WHOLE = 1 << 16


class Response:
    """A response whose connection goes back to the pool once it is read to the end."""

    def __init__(
        self,
        release: Callable[[HTTPConnection], None],
        conn: HTTPConnection,
        raw: HTTPResponse,
    ) -> None:
        self._release = release
        self._conn: HTTPConnection | None = conn
        self.raw = raw
        self.status = raw.status
        self.content_type = raw.getheader("content-type", "")

    def frames(self) -> Iterator[tuple[Kind, bytes]]:
        """Frames as they arrive; the stream ends after a terminal frame."""
        size = HEADER.size
        remaining = self.raw.length  # None for a chunked body: a stream, read frame by frame
        if remaining is not None and remaining <= _READ_WHOLE:
            body = self.raw.read()  # a call answered at once: one read, not three
            offset = 0
            while len(body) - offset >= size:
                kind, length = HEADER.unpack_from(body, offset)
                offset += size + length
                if offset > len(body):
                    break
                yield KINDS[kind], body[offset - length : offset]
        else:
            read = self.raw.read
            while len(head := read(size)) == size:
                kind, length = HEADER.unpack(head)
                yield KINDS[kind], read(length) if length else b""
        self.abandon()
        raise DaemonError("the daemon's response ended in the middle of a call")

    def json(self) -> Any:
        """The whole body as JSON."""
        return json.loads(self.read())

    def read(self) -> bytes:
        """The rest of the body; releases the connection."""
        data = self.raw.read()
        self.release()
        return data

    def release(self) -> None:
        """Finish the response and return the connection for reuse."""
        if self._conn is not None:
            self.raw.read()  # consume the end of a chunked body
            self._release(self._conn)
            self._conn = None

    def abandon(self) -> None:
        """Drop a response that will not be read to the end (its connection is closed)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def wait_until(self, deadline: float) -> None:
        """Bound the next read by ``deadline`` (``time.monotonic``); TimeoutError past it."""
        if self._conn is not None and self._conn.sock is not None:
            self._conn.sock.settimeout(remaining(deadline))


def handle_side_frame(response: Response, kind: Kind, data: bytes, stream_logs: bool) -> None:
    """Print a log frame (if ``stream_logs``); raise the error an error frame carries."""
    if kind == Kind.STDOUT:
        if stream_logs:
            sys.stdout.write(data.decode("utf-8", "replace"))
            sys.stdout.flush()
    elif kind == Kind.STDERR:
        if stream_logs:
            sys.stderr.write(data.decode("utf-8", "replace"))
            sys.stderr.flush()
    elif kind in (Kind.ERROR, Kind.REJECTED):
        response.release()
        raise errors.unpack(data)
    elif kind == Kind.END:
        response.release()
        raise DaemonError("the daemon ended a non-generator call with END")


def items(
    response: Response,
    frames: Iterator[tuple[Kind, bytes]],
    first: bytes,
    key: str,
    deadline: float | None = None,
    expired: Callable[[], Exception] | None = None,
) -> Iterator[Any]:
    """A generator call's items, ``first`` included, as they stream in (until ``deadline``,
    then the error ``expired`` makes)."""
    finished = False
    try:
        yield loads(first, f"an item of {key}")
        while True:
            if deadline is not None:
                response.wait_until(deadline)
            kind, data = next(frames)
            if kind == Kind.ITEM:
                yield loads(data, f"an item of {key}")
            elif kind == Kind.END or kind == Kind.RESULT:
                finished = True
                response.release()
                return
            else:
                if kind in (Kind.ERROR, Kind.REJECTED):
                    finished = True
                handle_side_frame(response, kind, data, True)
    except TimeoutError:
        if expired is None:
            raise
        response.abandon()
        raise expired() from None
    finally:
        if not finished:
            response.abandon()  # left early: the rest of the stream cannot be reused


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (``time.monotonic``); TimeoutError if none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the call's deadline passed")
    return left
