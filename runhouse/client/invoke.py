"""How a remote callable is called: sync, generator, coroutine or async generator, and
the keywords every call takes for itself (never passed to the user's code).

Functions, module methods and ``c.call`` share this, so every call style behaves the same.

    >>> options = pop_options(kwargs)       # stream_logs, run_name, run_async, remote
    >>> invoke(request, styled(kind_of(fn), options.run_async))
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

CallKind = Literal["sync", "generator", "async", "async_generator"]
RESERVED = frozenset({"stream_logs", "run_name", "run_async", "remote"})
_DONE = object()


class CallOptions:
    """What a call's reserved keywords asked for (plain slots: built on every call)."""

    __slots__ = ("remote", "run_async", "run_name", "stream_logs")

    def __init__(
        self,
        stream_logs: bool = True,
        run_name: str | None = None,
        run_async: bool | None = None,
        remote: bool = False,
    ) -> None:
        self.stream_logs = stream_logs
        self.run_name = run_name  # the run's key; its result is kept under it too
        self.run_async = run_async  # None: as the function is (async def or not)
        self.remote = remote  # keep the result on the cluster, return an ObjectRef


_LOUD, _QUIET = CallOptions(True), CallOptions(False)  # shared: never changed


def pop_options(kwargs: dict[str, Any], stream_logs: bool = True) -> CallOptions:
    """Take the reserved keywords out of ``kwargs``; what is left is the user's."""
    if not kwargs or kwargs.keys().isdisjoint(RESERVED):
        return _LOUD if stream_logs else _QUIET  # the usual call: nothing to pop or build
    run_async = kwargs.pop("run_async", None)
    return CallOptions(
        stream_logs=bool(kwargs.pop("stream_logs", stream_logs)),
        run_name=kwargs.pop("run_name", None),
        run_async=None if run_async is None else bool(run_async),
        remote=bool(kwargs.pop("remote", False)),
    )


_AS_ASYNC: dict[str, CallKind] = {"sync": "async", "generator": "async_generator"}
_AS_SYNC: dict[str, CallKind] = {"async": "sync", "async_generator": "generator"}


def styled(kind: CallKind, run_async: bool | None) -> CallKind:
    """The style of a call once ``run_async`` has overridden the function's own."""
    if run_async is None:
        return kind
    return (_AS_ASYNC if run_async else _AS_SYNC).get(kind, kind)


def is_async(kind: CallKind) -> bool:
    """Whether calls of this style return an awaitable (or an async iterator)."""
    return kind in ("async", "async_generator")


def kind_of(fn: Callable[..., Any] | None) -> CallKind:
    """Which call style ``fn`` needs on the client."""
    if fn is None:
        return "sync"
    if inspect.isasyncgenfunction(fn):
        return "async_generator"
    if inspect.iscoroutinefunction(fn):
        return "async"
    if inspect.isgeneratorfunction(fn):
        return "generator"
    return "sync"


def new_key(prefix: str) -> str:
    """A fresh key for a run or a stored result."""
    return f"{prefix}@{secrets.token_hex(6)}"


def invoke(request: Callable[[], Any], kind: CallKind) -> Any:
    """Run ``request`` (one call to the cluster, returning its value) in the style ``kind``
    asks for: the value, an iterator, an awaitable or an async iterator."""
    if kind == "sync":
        return request()
    if kind == "generator":
        return _as_iterator(request())
    if kind == "async":
        return asyncio.to_thread(request)
    return _async_items(request)


def _as_iterator(value: Any) -> Iterator[Any]:
    return value if isinstance(value, Iterator) else iter(value)


async def _async_items(start: Callable[[], Any]) -> AsyncIterator[Any]:
    # The HTTP stream is read on a worker thread, one item at a time, so the event loop
    # stays free while the remote generator works.
    items = _as_iterator(await asyncio.to_thread(start))
    while True:
        item = await asyncio.to_thread(next, items, _DONE)
        if item is _DONE:
            return
        yield item
