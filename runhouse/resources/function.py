"""``Function``: a Python function that runs on a cluster when called.

>>> fn = rh.function(add).to(rh.cluster(name="local"))
>>> fn(1, 2)                        # runs on the cluster; prints stream back live
3
>>> key = fn.run(1, 2); fn.get(key) # fire now, fetch later (even from another process)
>>> fn.remote(1, 2).fetch()         # the result stays on the cluster until fetched
>>> fn.map([1, 2, 3], [4, 5, 6])    # fanned out on the cluster, results in order
>>> fn(1, 2, run_name="nightly")    # reserved keywords: see runhouse.resources.remote_call
>>> fn.get_or_call("nightly", 1, 2) # the kept result of that run, or a new run
"""

from __future__ import annotations

import asyncio
import functools
import json
import shlex
from collections.abc import Callable, Iterable
from typing import Any

from runhouse.client.invoke import CallKind, kind_of, pop_options
from runhouse.client.shipping import pointers
from runhouse.resources import remote_call
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
        """Run the function on its cluster (or here, if it was never sent). The keywords
        ``stream_logs``, ``run_name``, ``run_async`` and ``remote`` are the call's own."""
        options = pop_options(kwargs, self.stream_logs)
        if self.system is None:
            return self.local(*args, **kwargs)
        return remote_call.call(self.system, self._key(), "call", args, kwargs, self.kind, options)

    def local(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function in this process."""
        if self.fn is None:
            raise ValueError("This function's code is not in this process; call it remotely.")
        return self.fn(*args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> str:
        """Start a call on the cluster and return its run key at once (``run_name=`` names
        it); ``fn.get(key)`` or ``c.get(key)`` returns its result."""
        cluster, key = self._bound()
        return remote_call.start(cluster, key, "call", args, kwargs)

    def get(self, run_key: str) -> Any:
        """Wait for the run ``run_key`` (from ``run``) and return its result."""
        cluster, _ = self._bound()
        return cluster.result(run_key)

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Run the call and keep its result on the cluster (under ``run_name=`` if given);
        returns a handle to fetch it or pass to other calls there."""
        cluster, key = self._bound()
        kwargs["remote"] = True
        options = pop_options(kwargs, self.stream_logs)
        return remote_call.call(cluster, key, "call", args, kwargs, self.kind, options)

    def get_or_call(
        self, run_name: str, *args: Any, load: bool = True, local: bool = True, **kwargs: Any
    ) -> Any:
        """The result kept on the cluster under ``run_name`` if there is one (``load``),
        else call the function with these arguments and keep its result under that name.
        ``local`` is accepted for the original API and has no effect."""
        cluster, key = self._bound()
        options = pop_options(kwargs, self.stream_logs)

        def run(plain: Any) -> Any:
            return remote_call.call(cluster, key, "call", args, kwargs, self.kind, plain)

        return remote_call.get_or_call(cluster, run_name, load, run, self.kind, options)

    def map(
        self, *iterables: Iterable[Any], return_exceptions: bool = False, **kwargs: Any
    ) -> list[Any]:
        """``fn(a, b)`` for each ``a, b`` of ``zip(*iterables)``, concurrently on the cluster;
        results in input order. ``return_exceptions=True``: an item that failed gives its
        exception (with the remote traceback) in its place instead of raising the first."""
        args = zip(*iterables, strict=False)
        return self.starmap(args, return_exceptions=return_exceptions, **kwargs)

    def starmap(
        self, arg_tuples: Iterable[Iterable[Any]], return_exceptions: bool = False, **kwargs: Any
    ) -> list[Any]:
        """``fn(*args, **kwargs)`` for each ``args`` in ``arg_tuples``, concurrently; results
        in input order (``return_exceptions`` as for ``map``)."""
        cluster, key = self._bound()
        options = pop_options(kwargs, self.stream_logs)
        if options.remote or options.run_name is not None:
            raise TypeError(
                "map and starmap return their results; remote= and run_name= are for single calls"
            )
        items = [(tuple(args), kwargs) for args in arg_tuples]
        run = functools.partial(
            remote_call.map_items,
            cluster,
            key,
            "call",
            items,
            options.stream_logs,
            return_exceptions,
        )
        if options.run_async:
            return asyncio.to_thread(run)  # type: ignore[return-value]
        return run()

    def http_url(self) -> str:
        """The URL that calls this function over plain HTTP (POST, JSON body)."""
        cluster, key = self._bound()
        return f"{cluster.endpoint()}/{key}/call"

    def endpoint(self, external: bool = False) -> str | None:
        """The function's URL on its cluster, ``http_url()`` without its ``/call`` (the
        original spelling: ``f"{fn.endpoint()}/call"``); with ``external=True``, None when
        only this machine reaches the daemon (loopback, or an SSH tunnel)."""
        cluster, key = self._bound()
        return remote_call.endpoint(cluster, key, external)

    def get_or_to(
        self,
        system: Cluster | str,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> Function:
        """The function ``system`` already holds under ``name`` (default: the key ``.to``
        would use), without sending it again; else ``.to(system, env, name)``."""
        cluster = as_cluster(system)
        fallback = self.fn.__name__ if self.fn is not None else self.key
        key = (name or self.name or fallback or "").rsplit("/", 1)[-1]
        if not key or key not in cluster.keys():
            return self.to(cluster, env=env, name=name)
        return Function(
            self.fn,
            name=name or self.rns_address,
            system=cluster,
            env=as_env(env) if env is not None else self.env,
            key=key,
            kind=self.kind,
            stream_logs=self.stream_logs,
            fn_pointers=self.fn_pointers,
        )

    def save(self, name: str | None = None, *args: Any, **kwargs: Any) -> Function:
        """Store the config (see ``Resource.save``); an unnamed function is saved under its
        own name (``add`` for ``def add``), or its key on the cluster."""
        if name is None and self.name is None:
            name = self.fn.__name__ if self.fn is not None else self.key
        return super().save(name, *args, **kwargs)

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


def function(
    fn: Callable[..., Any] | str | None = None,
    name: str | None = None,
    system: Cluster | str | None = None,
    env: Env | str | list[str] | None = None,
) -> Function:
    """A ``Function`` for ``fn``; given only a name (``rh.function("add")`` or
    ``name="add"``), the one saved under it."""
    if isinstance(fn, str):
        if fn.startswith("https://"):
            raise ValueError(
                "rh.function no longer builds functions from GitHub URLs; add the repo to the "
                "env's reqs (or clone it into the working dir) and pass the function itself"
            )
        if name is not None:
            raise TypeError("rh.function takes a function and a name, or a saved one's name")
        fn, name = None, fn
    if fn is None:
        if name is None:
            raise TypeError("rh.function needs a function, or the name of a saved one")
        return Function.from_name(name)
    made = Function(fn, name=name, env=as_env(env))
    return made.to(system, env=env) if system is not None else made
