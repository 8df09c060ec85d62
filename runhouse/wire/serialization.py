"""Serializing arguments, results and objects, with errors that name what failed."""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from runhouse.exceptions import SerializationError

PROTOCOL = pickle.HIGHEST_PROTOCOL


_PLAIN = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray})
_CONTAINERS = frozenset({list, tuple, set, frozenset})
_PLAIN_LIMIT = 64  # longer containers are not walked: cloudpickle handles them as well


def _plain(value: Any, depth: int = 0) -> bool:
    # Built-in data needs no cloudpickle (whose pickler costs more than a small call).
    # Loops, not all(<generator>): this runs on every call, mostly on ((), {}).
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind in _CONTAINERS:
        if len(value) > _PLAIN_LIMIT or (value and depth > 2):
            return False
        for item in value:  # noqa: SIM110 (a loop: no generator per call)
            if not _plain(item, depth + 1):
                return False
        return True
    if kind is dict:
        if len(value) > _PLAIN_LIMIT or (value and depth > 2):
            return False
        for key, item in value.items():
            if type(key) is not str or not _plain(item, depth + 1):
                return False
        return True
    return False


def dumps(value: Any, what: str) -> bytes:
    """Serialize ``value``; ``SerializationError`` names ``what`` and the type that failed."""
    if _plain(value):
        return pickle.dumps(value, PROTOCOL)
    try:
        return cloudpickle.dumps(value, protocol=PROTOCOL)
    except Exception as exc:
        raise SerializationError(what, _culprit(value, exc), str(exc)) from exc


def loads(data: bytes | memoryview, what: str) -> Any:
    """Deserialize ``data`` produced by ``dumps``."""
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise SerializationError(what, None, f"cannot be rebuilt here: {exc}") from exc


def _culprit(value: Any, exc: Exception) -> str:
    # pickle's message names the type ("cannot pickle '_thread.lock' object"); say which
    # top-level value held it when we can tell.
    items: list[Any] = []
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
        items = [*value[0], *value[1].values()]  # (args, kwargs)
    for item in items:
        try:
            cloudpickle.dumps(item, protocol=PROTOCOL)
        except Exception:
            return type(item).__name__
    return type(value).__name__
