"""One path for every call to a cluster: functions, module methods and ``c.call``.

The keywords a call takes for itself are popped here (``invoke.pop_options``), so they never
reach the user's code, and every call style behaves the same wherever it is spelled:

    >>> fn(1)                        # the value (an iterator for a generator)
    >>> fn(1, run_async=True)        # an awaitable, even for a plain function
    >>> fn(1, remote=True)           # an ObjectRef: the result stays on the cluster
    >>> fn(1, run_name="nightly")    # the value, also kept on the cluster as "nightly"
    >>> fn.run(1, run_name="nightly")     # "nightly", at once; fn.get("nightly") later
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from runhouse.client.invoke import (
    CallKind,
    CallOptions,
    invoke,
    is_async,
    new_key,
    pop_options,
    styled,
)
from runhouse.resources.object_ref import ALIVE, ObjectRef, refs_to, sent_as_keys

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

T = TypeVar("T")


def call(
    system: Cluster,
    key: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    kind: CallKind,
    options: CallOptions,
    timeout: float | None = None,
) -> Any:
    """Call ``key.method`` on ``system`` as ``options`` ask (see the module's docstring)."""
    if options.run_async is not None:
        kind = styled(kind, options.run_async)
    stream_logs = options.stream_logs
    if kind == "sync" and not options.remote and options.run_name is None:
        if timeout is None and not ALIVE:  # the usual call: nothing to add to it
            return system.request_call(key, method, args, kwargs, stream_logs=stream_logs)
        return send(system, key, method, args, kwargs, stream_logs, timeout)
    if options.remote:
        if kind in ("generator", "async_generator"):
            raise TypeError(
                f"{key}.{method} is a generator: its items stream back one by one, and "
                "remote=True (or .remote()) keeps a single result on the cluster"
            )
        result_key = options.run_name or new_key(key)

        def keep() -> ObjectRef:
            send(system, key, method, args, kwargs, stream_logs, timeout, store_as=result_key)
            return ObjectRef(system, result_key)

        return asyncio.to_thread(keep) if is_async(kind) else keep()
    run_name = options.run_name
    if run_name is None:
        return invoke(lambda: send(system, key, method, args, kwargs, stream_logs, timeout), kind)
    if kind in ("generator", "async_generator"):
        # Items stream back as they come; the run name names the run (to cancel it).
        return invoke(
            lambda: send(system, key, method, args, kwargs, stream_logs, timeout, run_key=run_name),
            kind,
        )

    def keep_and_fetch() -> Any:
        send(system, key, method, args, kwargs, stream_logs, timeout, store_as=run_name)
        return ObjectRef(system, run_name).fetch()

    return invoke(keep_and_fetch, kind)


def send(
    system: Cluster,
    key: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    stream_logs: bool,
    timeout: float | None = None,
    **params: str,
) -> Any:
    """``system.request_call``, with refs to ``system`` among the arguments sent as keys."""
    extra: dict[str, Any] = params if timeout is None else {**params, "timeout": timeout}
    return with_refs(
        system,
        (args, kwargs),
        lambda **refs: system.request_call(
            key, method, args, kwargs, stream_logs=stream_logs, **extra, **refs
        ),
    )


def with_refs(system: Cluster, arguments: Any, request: Callable[..., T]) -> T:
    """``request()``, or, if ``arguments`` hold refs to objects on ``system``, ``request(refs=
    their keys)`` with those refs pickled as their keys (the cluster resolves them)."""
    refs = refs_to(system, (arguments,), {})
    if not refs:
        return request()
    keys = json.dumps(sorted({str(r.key) for r in refs}))  # keys may hold commas
    with sent_as_keys(refs):
        return request(refs=keys)


def start(
    system: Cluster, key: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """Start a call that outlives this client and return its run key (``run_name`` if
    given); its result stays on the cluster under that key."""
    options = pop_options(kwargs)
    run_key = options.run_name or new_key(key)
    return with_refs(
        system,
        (args, kwargs),
        lambda **refs: system.run_detached(key, method, args, kwargs, run_key, **refs),
    )


def map_items(
    system: Cluster,
    key: str,
    method: str,
    items: list[tuple[tuple[Any, ...], dict[str, Any]]],
    stream_logs: bool,
    return_exceptions: bool = False,
) -> list[Any]:
    """``key.method`` once per (args, kwargs), concurrently on the cluster (refs resolved
    there, as for a single call); ``return_exceptions``: failed items give their errors."""
    extra = {"errors": "return"} if return_exceptions else {}
    return with_refs(
        system,
        items,
        lambda **refs: system.call_map(
            key, method, items, stream_logs=stream_logs, **extra, **refs
        ),
    )


def get_or_call(
    system: Cluster,
    run_name: str,
    load: bool,
    run: Callable[[CallOptions], Any],
    kind: CallKind,
    options: CallOptions,
) -> Any:
    """The result kept under ``run_name`` if there is one (``load``), else ``run(options)``
    with the result kept under that name; with ``remote=True``, an ObjectRef either way.
    An async function (or ``run_async=True``) gets an awaitable either way."""
    plain = CallOptions(options.stream_logs, run_name, False, options.remote)
    if is_async(styled(kind, options.run_async)):
        return asyncio.to_thread(get_or_call, system, run_name, load, run, "sync", plain)
    if load and run_name in system.keys():
        return ObjectRef(system, run_name) if options.remote else system.result(run_name)
    return run(plain)


def endpoint(system: Cluster, key: str, external: bool = False) -> str | None:
    """``{daemon URL}/{key}``; None with ``external`` when only this machine reaches the
    daemon (it listens on loopback: here, or behind an SSH tunnel)."""
    if external and system.exposure.host != "0.0.0.0":
        return None
    return f"{system.endpoint()}/{key}"
