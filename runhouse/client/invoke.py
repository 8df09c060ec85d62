"""How a remote callable is called: sync, generator, coroutine or async generator.

Functions and module methods share this, so every call style behaves the same for both.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

CallKind = Literal["sync", "generator", "async", "async_generator"]
_DONE = object()


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


def invoke(
    system: Cluster,
    key: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    kind: CallKind,
    stream_logs: bool,
) -> Any:
    """Call ``key.method`` on ``system`` in the style ``kind`` asks for."""
    if kind == "sync":
        return system.request_call(key, method, args, kwargs, stream_logs=stream_logs)
    if kind == "generator":
        return _as_iterator(system.request_call(key, method, args, kwargs, stream_logs=stream_logs))
    if kind == "async":
        return asyncio.to_thread(system.request_call, key, method, args, kwargs, stream_logs=stream_logs)
    return _async_items(lambda: system.request_call(key, method, args, kwargs, stream_logs=stream_logs))


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
