"""``Function``: a Python function that runs on a cluster when called.

>>> fn = rh.function(add).to(rh.cluster(name="local"))
>>> fn(1, 2)                        # runs on the cluster; prints stream back live
3
>>> key = fn.run(1, 2); fn.get(key) # fire now, fetch later (even from another process)
>>> fn.remote(1, 2).fetch()         # the result stays on the cluster until fetched
>>> fn.map([1, 2, 3], [4, 5, 6])    # fanned out on the cluster, results in order
"""

from __future__ import annotations

import functools
import inspect
import json
import shlex
from collections.abc import Callable, Iterable
from typing import Any

from runhouse.client.invoke import CallKind, invoke, kind_of, new_key
from runhouse.client.shipping import pointers
from runhouse.resources.cluster import Cluster, as_cluster, send_code
from runhouse.resources.env import Env, as_env
from runhouse.resources.object_ref import ObjectRef
from runhouse.resources.resource import Resource


class Function(Resource):
    """A function, and where it runs once sent with ``.to(cluster)``."""

    resource_type = "function"

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        name: str | None = None,
        system: Cluster | str | dict[str, Any] | None = None,
        env: Env | str | dict[str, Any] | None = None,
        key: str | None = None,
        kind: CallKind | None = None,
        stream_logs: bool = True,
        fn_pointers: dict[str, str] | None = None,
    ) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"rh.function needs a callable, got {type(fn).__name__}")
        super().__init__(name=name)
        self.fn = fn
        self.system = as_cluster(system) if system is not None else None
        self.env = as_env(env)
        self.key = key
        self.kind: CallKind = kind or kind_of(fn)
        self.stream_logs = stream_logs
        self.fn_pointers = fn_pointers or (pointers(fn) if fn is not None else None)

    def config(self) -> dict[str, Any]:
        """The function's config: where it runs and how to call it (not its code)."""
        return {
            **super().config(),
            "env": self.ref(self.env),
            "fn_pointers": self.fn_pointers,
            "key": self.key,
            "kind": self.kind,
            "stream_logs": self.stream_logs,
            "system": self.ref(self.system),
        }

    def to(
        self,
        system: Cluster | str,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> Function:
        """Send the function to ``system`` (in ``env``) and return it bound there."""
        if self.fn is None:
            raise ValueError(
                f"{self.rns_address or 'This function'} has no code here to send; "
                "create it with rh.function(fn) in this process."
            )
        key = name or self.name or self.fn.__name__
        cluster, target_env, key = send_code(
            self.fn, system, env, self.env, key, named=bool(name or self.name)
        )
        return Function(
            self.fn,
            name=name or self.rns_address,
            system=cluster,
            env=target_env,
            key=key,
            kind=self.kind,
            stream_logs=self.stream_logs,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function on its cluster (or here, if it was never sent)."""
        stream_logs = self._pop_stream_logs(kwargs)
        if self.system is None:
            return self.local(*args, **kwargs)
        return invoke(self.system, self._key(), "call", args, kwargs, self.kind, stream_logs)

    def local(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function in this process."""
        if self.fn is None:
            raise ValueError("This function's code is not in this process; call it remotely.")
        return self.fn(*args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> str:
        """Start a call on the cluster and return its run key at once (see ``get``)."""
        cluster, key = self._bound()
        return cluster.run_detached(key, "call", args, kwargs, new_key(key))

    def get(self, run_key: str) -> Any:
        """Wait for the run ``run_key`` (from ``run``) and return its result."""
        cluster, _ = self._bound()
        return cluster.result(run_key)

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Run the call and keep its result on the cluster; returns a handle to fetch it."""
        cluster, key = self._bound()
        stream_logs = self._pop_stream_logs(kwargs)
        result_key = new_key(key)
        cluster.request_call(
            key, "call", args, kwargs, stream_logs=stream_logs, store_as=result_key
        )
        return ObjectRef(cluster, result_key)

    def map(self, *iterables: Iterable[Any], **kwargs: Any) -> list[Any]:
        """``fn(a, b)`` for each ``a, b`` of ``zip(*iterables)``, concurrently on the cluster."""
        return self.starmap(zip(*iterables, strict=False), **kwargs)

    def starmap(self, arg_tuples: Iterable[Iterable[Any]], **kwargs: Any) -> list[Any]:
        """``fn(*args, **kwargs)`` for each ``args`` in ``arg_tuples``, concurrently."""
        cluster, key = self._bound()
        stream_logs = self._pop_stream_logs(kwargs)
        items = [(tuple(args), kwargs) for args in arg_tuples]
        return cluster.call_map(key, "call", items, stream_logs=stream_logs)

    def http_url(self) -> str:
        """The URL that calls this function over plain HTTP (POST, JSON body)."""
        cluster, key = self._bound()
        return f"{cluster.endpoint()}/{key}/call"

    def http_curl(self, *args: Any, **kwargs: Any) -> str:
        """A curl command line that calls this function with these (JSON-able) arguments."""
        cluster, _ = self._bound()
        body = json.dumps({"args": list(args), "kwargs": kwargs})
        parts = [
            "curl",
            "-sS",
            "-X",
            "POST",
            self.http_url(),
            "-H",
            "Content-Type: application/json",
        ]
        token = cluster.token()
        if token:
            parts += ["-H", f"Authorization: Bearer {token}"]
        certificate = cluster.certificate_file()
        if certificate is not None:
            parts += ["--cacert", str(certificate)]
        parts += ["-d", body]
        return " ".join(shlex.quote(p) for p in parts)

    def _bound(self) -> tuple[Cluster, str]:
        if self.system is None:
            raise ValueError("This function runs locally; send it first: fn = fn.to(cluster).")
        return self.system, self._key()

    def _key(self) -> str:
        if self.key is None:
            raise ValueError("This function has no key on its cluster; send it with .to(cluster).")
        return self.key

    def _pop_stream_logs(self, kwargs: dict[str, Any]) -> bool:
        # `stream_logs=` is ours unless the function itself takes a parameter of that name.
        if "stream_logs" in kwargs and not _takes(self.fn, "stream_logs"):
            return bool(kwargs.pop("stream_logs"))
        return self.stream_logs


def _takes(fn: Callable[..., Any] | None, parameter: str) -> bool:
    if fn is None:
        return False
    try:
        return _takes_cached(fn, parameter)
    except TypeError:  # an unhashable callable: ask each time
        return _parameter_of(fn, parameter)


def _parameter_of(fn: Callable[..., Any], parameter: str) -> bool:
    try:
        return parameter in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


# inspect.signature costs more than a whole call; a function's parameters do not change.
_takes_cached = functools.lru_cache(maxsize=1024)(_parameter_of)


def function(
    fn: Callable[..., Any] | None = None,
    name: str | None = None,
    system: Cluster | str | None = None,
    env: Env | str | list[str] | None = None,
) -> Function:
    """A ``Function`` for ``fn``; given only ``name``, the one saved under it."""
    if fn is None:
        if name is None:
            raise TypeError("rh.function needs a function, or the name of a saved one")
        return Function.from_name(name)
    made = Function(fn, name=name, env=as_env(env))
    return made.to(system, env=env) if system is not None else made
