"""Frames: the unit of every streamed response, from worker to daemon to client.

A frame is ``kind`` (1 byte), ``length`` (4 bytes, big-endian) and ``length`` bytes of
payload. On the socket between the daemon and a worker each frame is prefixed by the call
id (4 bytes), so many calls share one socket; the daemon strips that prefix and passes the
rest through untouched, so a frame is encoded once, by the worker, and decoded once, by the
client.
"""

from __future__ import annotations

import struct
from enum import IntEnum

HEADER = struct.Struct("!BI")
ROUTED_HEADER = struct.Struct("!IBI")  # call id, kind, length
MAX_FRAME = 2**32 - 1


class Kind(IntEnum):
    """What a frame carries."""

    STDOUT = 1  # utf-8 text the call printed
    STDERR = 2  # utf-8 text the call wrote to stderr or logged
    ITEM = 3  # one generator item, serialized
    RESULT = 4  # the return value, serialized; ends the stream
    ERROR = 5  # a packed exception; ends the stream
    END = 6  # a generator is exhausted; ends the stream
    REJECTED = 7  # the request itself was bad (undecodable args, no such method); a packed error
    REQUEST = 16  # daemon -> worker: a JSON header and a body (see pack_request)


TERMINAL = frozenset({Kind.RESULT, Kind.ERROR, Kind.END, Kind.REJECTED})
REQUEST_HEADER = struct.Struct("!I")


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    """One frame as bytes."""
    return HEADER.pack(kind, len(payload)) + payload


def encode_routed(call_id: int, kind: Kind, payload: bytes = b"") -> bytes:
    """One frame prefixed with the call it belongs to (the daemon-worker socket)."""
    return ROUTED_HEADER.pack(call_id, kind, len(payload)) + payload


def pack_request(header: bytes, body: bytes | memoryview = b"") -> list[bytes | memoryview]:
    """A request payload as pieces to write: header length, JSON header, body (not copied)."""
    return [REQUEST_HEADER.pack(len(header)), header, body]


def unpack_request(payload: bytes) -> tuple[bytes, memoryview]:
    """Split a request payload into its JSON header and its body."""
    (size,) = REQUEST_HEADER.unpack_from(payload)
    start = REQUEST_HEADER.size
    view = memoryview(payload)
    return bytes(view[start : start + size]), view[start + size :]
