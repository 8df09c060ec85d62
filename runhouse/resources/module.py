"""Modules: classes whose instances live on a cluster and keep their state there.

    >>> Counter = rh.module(MyCounter).to(c)     # the class is sent to the cluster
    >>> counter = Counter(start=1, name="counter")   # constructed on the cluster
    >>> counter.increment(2)                     # runs there; state stays there
    >>> counter.remote.count; counter.remote.count = 5

    >>> class Model(rh.Module): ...              # or subclass, and send an instance:
    >>> model = Model(size=3).to(c, name="model")

    >>> Counter.make_default()                   # class and static methods run there too
    >>> Counter.get_or_to(c)                     # what c holds already, or send it

The remote side is a separate proxy (``remote_module.RemoteModule``); user classes are never
wrapped.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from runhouse.client.invoke import new_key, pop_options
from runhouse.client.shipping import pointers
from runhouse.resources import remote_call
from runhouse.resources.cluster import Cluster, as_cluster, send_code
from runhouse.resources.env import Env, as_env
from runhouse.resources.remote_module import (
    MISSING,
    RemoteMethod,
    RemoteModule,
    is_method,
    method_kind,
)
from runhouse.resources.resource import Resource


class Module(Resource):
    """Subclass to make classes whose instances can be sent to a cluster with ``.to()``.

    ``system`` and ``env`` given here are where ``.to()`` and ``get_or_to()`` send the
    instance unless told otherwise; nothing is sent, and nothing runs remotely, before that.
    """

    resource_type = "module"
    # Prefixed: a subclass's own `_system` or `_env` (an RL env, say) must not clash.
    _rh_system: Cluster | None = None
    _rh_env: Env | None = None

    def __init__(
        self,
        system: Cluster | str | None = None,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._rh_system = as_cluster(system) if system is not None else None
        self._rh_env = as_env(env)

    def to(
        self,
        system: Cluster | str | None = None,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> RemoteModule:
        """Send this instance (its state) to ``system`` (default: the one it was made with);
        returns the remote proxy."""
        cluster, target_env, key = self._destination(system, env, name)
        cluster.put(key, self, env=target_env)
        return self._proxy(cluster, target_env, key, name)

    def get_or_to(
        self,
        system: Cluster | str | None = None,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> RemoteModule:
        """The instance ``system`` already holds under ``name`` (default: the key ``.to``
        would use), without sending this one; else ``.to(system, env, name)``."""
        cluster, target_env, key = self._destination(system, env, name)
        if key not in cluster.keys():
            cluster.put(key, self, env=target_env)
        return self._proxy(cluster, target_env, key, name)

    def _destination(
        self, system: Cluster | str | None, env: Env | str | list[str] | None, name: str | None
    ) -> tuple[Cluster, Env | None, str]:
        chosen = system if system is not None else self._rh_system
        if chosen is None:
            raise ValueError(
                f"Send {type(self).__name__} somewhere: .to(cluster), or give it system= "
                "when constructing it."
            )
        target_env = as_env(env) if env is not None else self._rh_env
        return (
            as_cluster(chosen),
            target_env,
            _key(name or self.name or type(self).__name__.lower()),
        )

    def _proxy(self, cluster: Cluster, env: Env | None, key: str, name: str | None) -> RemoteModule:
        proxy = RemoteModule(name=name, system=cluster, key=key, cls=type(self), env=env)
        proxy._local = self  # what `proxy.local.x` reads
        return proxy


class ModuleClass(Resource):
    """A class to construct on a cluster (what ``rh.module(Cls)`` returns)."""

    resource_type = "module"
    stream_logs = True  # calls made through the class (construction, class methods) stream logs

    def __init__(
        self,
        cls: type | None = None,
        name: str | None = None,
        system: Cluster | str | dict[str, Any] | None = None,
        env: Env | str | dict[str, Any] | None = None,
        key: str | None = None,
        cls_pointers: dict[str, str] | None = None,
    ) -> None:
        if cls is not None and not inspect.isclass(cls):
            raise TypeError(f"rh.module needs a class, got {type(cls).__name__}")
        super().__init__(name=name)
        self.cls = cls
        self.system = as_cluster(system) if system is not None else None
        self.env = as_env(env)
        self.key = key
        self.cls_pointers = cls_pointers or (pointers(cls) if cls is not None else None)

    def config(self) -> dict[str, Any]:
        """Where the class lives (not its code)."""
        return {
            **super().config(),
            "cls_pointers": self.cls_pointers,
            "env": self.ref(self.env),
            "key": self.key,
            "system": self.ref(self.system),
        }

    def to(
        self,
        system: Cluster | str,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> ModuleClass:
        """Send the class to ``system``; calling the result constructs instances there."""
        if self.cls is None:
            raise ValueError(
                "This module's class is not in this process; create it with rh.module(Cls)."
            )
        key = name or self.name or self.cls.__name__
        cluster, target_env, key = send_code(
            self.cls, system, env, self.env, key, named=bool(name or self.name)
        )
        return ModuleClass(
            self.cls, name=name or self.rns_address, system=cluster, env=target_env, key=key
        )

    def __call__(self, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
        """Construct an instance: on the cluster (a ``RemoteModule``, kept under ``name``)
        once sent, else here. ``stream_logs`` and ``run_async`` are the call's own."""
        options = pop_options(kwargs, self.stream_logs)
        if self.system is None or self.key is None:
            if self.cls is None:
                raise ValueError("This module has neither its class here nor a cluster.")
            return self.cls(*args, **kwargs)
        if options.remote or options.run_name is not None:
            raise TypeError("an instance is kept on the cluster under name=; not remote=/run_name=")
        if name is not None and _takes_name(self.cls):
            kwargs["name"] = name  # the class's own `name` too, not only the instance's key
        system, cls_key = self.system, self.key
        key = _key(name) if name else new_key(cls_key.lower())

        def construct() -> RemoteModule:
            remote_call.send(
                system, cls_key, "call", args, kwargs, options.stream_logs, store_as=key
            )
            return RemoteModule(name=name, system=system, key=key, cls=self.cls, env=self.env)

        return asyncio.to_thread(construct) if options.run_async else construct()

    def __getattr__(self, attr: str) -> Any:
        # Only reached for names the resource does not have: members of the class, which run
        # on the cluster once it is there (class and static methods), or here before.
        if attr.startswith("_"):
            raise AttributeError(attr)
        cls = self.__dict__.get("cls")
        if self.__dict__.get("system") is None or self.__dict__.get("key") is None:
            if cls is None:
                raise AttributeError(attr)
            return getattr(cls, attr)
        member = inspect.getattr_static(cls, attr, MISSING) if cls is not None else MISSING
        if cls is not None and (member is MISSING or not is_method(member)):
            system, key = self._target()  # a class attribute, as the cluster's class has it
            return system.request_call(key, attr, stream_logs=False, op="getattr")
        return RemoteMethod(self, attr, method_kind(cls, attr))

    def call_method(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a class or static method by name (for names this resource itself uses)."""
        return RemoteMethod(self, method, method_kind(self.cls, method))(*args, **kwargs)

    def get_or_to(
        self,
        system: Cluster | str,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> ModuleClass:
        """The class ``system`` already holds under ``name`` (default: the key ``.to`` would
        use), without sending it again; else ``.to(system, env, name)``."""
        cluster = as_cluster(system)
        fallback = self.cls.__name__ if self.cls is not None else self.key
        key = _key(name or self.name or fallback or "")
        if not key or key not in cluster.keys():
            return self.to(cluster, env=env, name=name)
        target_env = as_env(env) if env is not None else self.env
        return ModuleClass(
            self.cls, name=name or self.rns_address, system=cluster, env=target_env, key=key
        )

    def endpoint(self, external: bool = False) -> str | None:
        """The class's URL on its cluster (``POST {endpoint}/{method}`` calls a class or
        static method); with ``external=True``, None when only this machine reaches it."""
        system, key = self._target()
        return remote_call.endpoint(system, key, external)

    def save(self, name: str | None = None, *args: Any, **kwargs: Any) -> ModuleClass:
        """Store the config (see ``Resource.save``); unnamed, under the class's name."""
        if name is None and self.name is None:
            name = self.cls.__name__ if self.cls is not None else self.key
        return super().save(name, *args, **kwargs)

    def _target(self) -> tuple[Cluster, str]:
        if self.system is None or self.key is None:
            raise ValueError("This module's class was not sent anywhere: .to(cluster) first.")
        return self.system, self.key


def _key(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _takes_name(cls: type | None) -> bool:
    try:
        return cls is not None and "name" in inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a signature Python cannot tell
        return False


def module(
    cls: type | str | None = None,
    name: str | None = None,
    system: Cluster | str | None = None,
    env: Env | str | list[str] | None = None,
) -> Any:
    """A class to send to a cluster (``rh.module(Cls).to(c)``, or ``system=`` to send it at
    once); given only a name (``rh.module("counter")`` or ``name=``), the one saved."""
    if isinstance(cls, str):
        if name is not None:
            raise TypeError("rh.module takes a class and a name, or a saved module's name")
        cls, name = None, cls
    if cls is None:
        if name is None:
            raise TypeError("rh.module needs a class, or the name of a saved module")
        return Resource.from_name(name)
    made = ModuleClass(cls, name=name, env=as_env(env))
    return made.to(system, env=env) if system is not None else made
