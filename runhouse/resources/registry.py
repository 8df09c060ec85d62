"""Which class rebuilds a config: keyed by ``resource_type``, refined by ``resource_subtype``.

Built-in types are declared below as import paths, so a config can be loaded in a fresh
process without importing every resource module up front. Subclasses (built-in or the
user's) register themselves when their class is created.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from runhouse.exceptions import UnknownResourceTypeError

if TYPE_CHECKING:
    from runhouse.resources.resource import Resource

BUILTIN_TYPES: dict[str, str] = {
    "blob": "runhouse.resources.blob",
    "cluster": "runhouse.resources.cluster",
    "env": "runhouse.resources.env",
    "file": "runhouse.resources.blob",
    "folder": "runhouse.resources.folder",
    "function": "runhouse.resources.function",
    "module": "runhouse.resources.module",
    "package": "runhouse.resources.package",
    "resource": "runhouse.resources.resource",
    "secret": "runhouse.resources.secret",
    "table": "runhouse.resources.table",
}

_lock = threading.Lock()
_by_type: dict[str, type[Resource]] = {}
_by_subtype: dict[tuple[str, str], type[Resource]] = {}


def register(cls: type[Resource]) -> None:
    """Record ``cls`` under its ``resource_type`` (if it declares one) and its subtype."""
    rtype = cls.resource_type
    with _lock:
        if "resource_type" in vars(cls) or rtype not in _by_type:
            _by_type[rtype] = cls
        _by_subtype[(rtype, cls.__name__)] = cls


def known_types() -> list[str]:
    """Every resource_type a config may name here."""
    with _lock:
        return sorted(set(BUILTIN_TYPES) | set(_by_type))


def class_for(config: dict[str, Any], address: str | None = None) -> type[Resource]:
    """The class that rebuilds ``config``: its subtype if known, else its type's base class."""
    rtype = config.get("resource_type")
    if not isinstance(rtype, str):
        raise UnknownResourceTypeError(rtype, known_types(), address)
    module = BUILTIN_TYPES.get(rtype)
    if module is not None:
        importlib.import_module(module)
    subtype = config.get("resource_subtype")
    with _lock:
        cls = _by_subtype.get((rtype, subtype)) if isinstance(subtype, str) else None
        cls = cls or _by_type.get(rtype)
    if cls is None:
        raise UnknownResourceTypeError(rtype, known_types(), address)
    return cls
