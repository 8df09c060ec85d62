"""Exceptions across processes: packed where raised, rebuilt where the call was made.

The rebuilt exception is the same type, with the remote traceback as its ``__cause__`` (so
Python prints it above the local frames) and as ``remote_traceback``. One that cannot be
rebuilt becomes ``RemoteError`` carrying the remote type name and traceback text.
"""

from __future__ import annotations

import contextlib
import pickle
import traceback
from typing import Any

import cloudpickle

from runhouse.exceptions import RemoteError


class RemoteTraceback(Exception):
    """Carries the remote traceback text; printed as the cause of a rebuilt exception."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def format_traceback(exc: BaseException) -> str:
    """The exception's traceback as text."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def pack(exc: BaseException) -> bytes:
    """The exception, its type name and its formatted traceback, as bytes."""
    tb = format_traceback(exc)
    kind = type(exc)
    record: dict[str, Any] = {
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(exc),
        "traceback": tb,
        "exception": None,
    }
    with contextlib.suppress(Exception):  # unpicklable exceptions still travel, as text
        record["exception"] = cloudpickle.dumps(exc.with_traceback(None))
    return pickle.dumps(record)


class Packed(bytes):
    """An exception packed by ``pack`` standing in a map's results (``return_exceptions``):
    the client puts the rebuilt exception in its place."""


def unpack(data: bytes | memoryview) -> BaseException:
    """Rebuild the exception packed by ``pack`` (or a ``RemoteError`` if it cannot be)."""
    record = pickle.loads(data)
    remote_tb = RemoteTraceback(f"\n\n(on the cluster)\n{record['traceback']}")
    exc: BaseException | None = None
    if record["exception"] is not None:
        try:
            exc = pickle.loads(record["exception"])
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(record["type"], record["message"], record["traceback"])
    exc.__cause__ = remote_tb
    with contextlib.suppress(AttributeError):  # exceptions with __slots__
        exc.remote_traceback = record["traceback"]  # type: ignore[attr-defined]
    return exc
