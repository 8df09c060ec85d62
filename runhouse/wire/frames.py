"""Frames: the unit of every streamed response, from worker to daemon to client.

A frame is ``kind`` (1 byte), ``length`` (4 bytes, big-endian) and ``length`` bytes of
payload. On the socket between the daemon and a worker each frame is prefixed by the call
id (4 bytes), so many calls share one socket; the daemon strips that prefix and passes the
rest through untouched, so a frame is encoded once, by the worker, and decoded once, by the
client.

A request from the daemon to a worker is one REQUEST frame: the length of its header (4
bytes), the header (a pickled dict: op, key, method, ...) and the body the client sent.
The header is pickled, not JSON: both ends are Runhouse, and on a no-op call JSON's
encoding and decoding cost more than the worker's whole handling of the call.
"""

from __future__ import annotations

import pickle
import struct
from enum import IntEnum
from typing import Any

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
KINDS = {kind.value: kind for kind in Kind}  # a dict lookup; Kind(value) costs ten times more
REQUEST_HEADER = struct.Struct("!I")
_REQUEST_PROTOCOL = 4  # an env's worker may run an older Python than the daemon


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    """One frame as bytes."""
    return HEADER.pack(kind, len(payload)) + payload


def encode_routed(call_id: int, kind: Kind, payload: bytes = b"") -> bytes:
    """One frame prefixed with the call it belongs to (the daemon-worker socket)."""
    return ROUTED_HEADER.pack(call_id, kind, len(payload)) + payload


def request_prefix(call_id: int, request: dict[str, Any], body_size: int) -> bytes:
    """Everything of a REQUEST frame that comes before its body of ``body_size`` bytes."""
    head = pickle.dumps(request, _REQUEST_PROTOCOL)
    size = REQUEST_HEADER.size + len(head) + body_size
    return ROUTED_HEADER.pack(call_id, Kind.REQUEST, size) + REQUEST_HEADER.pack(len(head)) + head


def unpack_request(payload: bytes) -> tuple[dict[str, Any], memoryview]:
    """A REQUEST frame's payload as its header and its body (not copied)."""
    (size,) = REQUEST_HEADER.unpack_from(payload)
    start = REQUEST_HEADER.size
    view = memoryview(payload)
    return pickle.loads(view[start : start + size]), view[start + size :]
