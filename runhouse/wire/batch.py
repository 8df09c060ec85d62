"""A map's items (and its results) as one body of separately encoded parts.

    body = batch.pack([dumps(a), dumps(b), dumps(c)])
    first, rest = batch.split(body, 2)      # contiguous halves, each a body of its own
    batch.join([first_results, rest_results]) == batch.pack([ra, rb, rc])

Each part is encoded on its own, so the daemon can deal a map's items out to an env's
replicas and put their results back together in order without decoding a single one (the
daemon never unpickles user data: its Python may not have the user's packages).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

_COUNT = struct.Struct("!I")
_LENGTH = struct.Struct("!Q")


class BatchError(ValueError):
    """A body that is not a well-formed batch."""


def pack(parts: Sequence[bytes | memoryview]) -> bytes:
    """One body holding ``parts`` in order."""
    lengths = b"".join(_LENGTH.pack(len(p)) for p in parts)
    return b"".join([_COUNT.pack(len(parts)), lengths, *parts])


def unpack(body: bytes | memoryview) -> list[memoryview]:
    """The parts of a body made by ``pack`` (views into it, not copies)."""
    view = memoryview(body)
    if len(view) < _COUNT.size:
        raise BatchError("a batch body is shorter than its header")
    (count,) = _COUNT.unpack_from(view)
    start = _COUNT.size + count * _LENGTH.size
    if len(view) < start:
        raise BatchError(f"a batch body says it has {count} parts but holds fewer lengths")
    parts = []
    for i in range(count):
        (length,) = _LENGTH.unpack_from(view, _COUNT.size + i * _LENGTH.size)
        end = start + length
        if end > len(view):
            raise BatchError(f"part {i} of a batch body runs past its end")
        parts.append(view[start:end])
        start = end
    if start != len(view):
        raise BatchError("a batch body has bytes after its last part")
    return parts


def split(body: bytes | memoryview, pieces: int) -> list[bytes]:
    """``body``'s parts dealt into at most ``pieces`` contiguous batches of near-equal size
    (in order; none empty unless ``body`` is)."""
    parts = unpack(body)
    pieces = max(1, min(pieces, len(parts)))
    size, extra = divmod(len(parts), pieces)
    batches, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        batches.append(pack(parts[start:end]))
        start = end
    return batches


def join(bodies: Sequence[bytes | memoryview]) -> bytes:
    """One batch holding the parts of ``bodies`` in order."""
    return pack([part for body in bodies for part in unpack(body)])
