"""ObjectRefs passed to a call on their own cluster travel as their key, not their value.

The client pickles such a ref as ``resolve_ref(key)``; the worker unpickles the call's
arguments inside ``resolving(lookup)``, so each ref becomes the object kept under its key
wherever it sits in the arguments, with no walk over them and no trip through the client.

    >>> with resolving(objects.__getitem__):
    ...     args, kwargs = loads(body)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

_lookup: ContextVar[Callable[[str], Any] | None] = ContextVar("rh_ref_lookup", default=None)


class UnresolvedRef:
    """A ref's marker unpickled where no call resolves it (outside a call's arguments)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (resolve_ref, (self.key,))

    def __repr__(self) -> str:
        return f"UnresolvedRef({self.key!r})"


def resolve_ref(key: str) -> Any:
    """Unpickling hook: the object under ``key``, from the call whose arguments hold it."""
    lookup = _lookup.get()
    return UnresolvedRef(key) if lookup is None else lookup(key)


@contextlib.contextmanager
def resolving(lookup: Callable[[str], Any]) -> Iterator[None]:
    """Refs unpickled inside this block become ``lookup(key)``."""
    token = _lookup.set(lookup)
    try:
        yield
    finally:
        _lookup.reset(token)
