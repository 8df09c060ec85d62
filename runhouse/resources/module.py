"""Modules: classes whose instances live on a cluster and keep their state there.

    >>> Counter = rh.module(MyCounter).to(c)     # the class is sent to the cluster
    >>> counter = Counter(start=1, name="counter")   # constructed on the cluster
    >>> counter.increment(2)                     # runs there; state stays there
    >>> counter.remote.count; counter.remote.count = 5

    >>> class Model(rh.Module): ...              # or subclass, and send an instance:
    >>> model = Model(size=3).to(c, name="model")

The remote side is a separate proxy (``RemoteModule``); user classes are never wrapped.
"""

from __future__ import annotations

import inspect
from typing import Any

from runhouse.client.invoke import CallKind, invoke, kind_of, new_key
from runhouse.client.shipping import pointers
from runhouse.resources.cluster import Cluster, as_cluster, send_code
from runhouse.resources.env import Env, as_env
from runhouse.resources.resource import Resource

_MISSING = object()


class Module(Resource):
    """Subclass to make classes whose instances can be sent to a cluster with ``.to()``."""

    resource_type = "module"

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)

    def to(
        self,
        system: Cluster | str,
        env: Env | str | list[str] | None = None,
        name: str | None = None,
    ) -> RemoteModule:
        """Send this instance (its state) to ``system``; returns the remote proxy."""
        cluster = as_cluster(system)
        key = _key(name or self.name or type(self).__name__.lower())
        cluster.put(key, self, env=as_env(env))
        return RemoteModule(name=name, system=cluster, key=key, cls=type(self), env=as_env(env))


class ModuleClass(Resource):
    """A class to construct on a cluster (what ``rh.module(Cls)`` returns)."""

    resource_type = "module"

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
        """Construct an instance: on the cluster (a ``RemoteModule``) once sent, else here."""
        if self.system is None or self.key is None:
            if self.cls is None:
                raise ValueError("This module has neither its class here nor a cluster.")
            return self.cls(*args, **kwargs)
        key = _key(name) if name else new_key(self.key.lower())
        self.system.request_call(self.key, "call", args, kwargs, store_as=key)
        return RemoteModule(name=name, system=self.system, key=key, cls=self.cls, env=self.env)


class RemoteModule(Resource):
    """The proxy of an instance living on a cluster: its methods run there."""

    resource_type = "module"

    def __init__(
        self,
        name: str | None = None,
        system: Cluster | str | dict[str, Any] | None = None,
        key: str | None = None,
        cls: type | None = None,
        env: Env | str | dict[str, Any] | None = None,
        cls_pointers: dict[str, str] | None = None,
        stream_logs: bool = True,
    ) -> None:
        super().__init__(name=name)
        self.system = as_cluster(system) if system is not None else None
        self.key = key
        self.cls = cls
        self.env = as_env(env)
        self.cls_pointers = cls_pointers or (pointers(cls) if cls is not None else None)
        self.stream_logs = stream_logs

    def config(self) -> dict[str, Any]:
        """Where the instance lives."""
        return {
            **super().config(),
            "cls_pointers": self.cls_pointers,
            "env": self.ref(self.env),
            "key": self.key,
            "stream_logs": self.stream_logs,
            "system": self.ref(self.system),
        }

    @property
    def remote(self) -> RemoteAttributes:
        """Attributes of the remote instance: ``m.remote.x`` reads, ``m.remote.x = 1`` writes."""
        return RemoteAttributes(self)

    def call_method(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method by name (for methods whose names the proxy itself uses)."""
        return RemoteMethod(self, method, self._kind(method))(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        # Only reached for names the proxy does not have: those belong to the remote instance.
        if attr.startswith("_"):
            raise AttributeError(attr)
        cls = self.__dict__.get("cls")
        member = inspect.getattr_static(cls, attr, _MISSING) if cls is not None else _MISSING
        if member is _MISSING and cls is not None:
            return self.remote.__getattr__(attr)  # an instance attribute
        if isinstance(member, property) or (member is not _MISSING and not _is_method(member)):
            return self.remote.__getattr__(attr)
        return RemoteMethod(self, attr, self._kind(attr))

    def _kind(self, method: str) -> CallKind:
        cls = self.__dict__.get("cls")
        member = inspect.getattr_static(cls, method, None) if cls is not None else None
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        return kind_of(member) if callable(member) else "sync"

    def _target(self) -> tuple[Cluster, str]:
        if self.system is None or self.key is None:
            raise ValueError("This module proxy has no cluster; it was not sent anywhere.")
        return self.system, self.key

    def __repr__(self) -> str:
        cls = self.cls.__name__ if self.cls is not None else "?"
        return f"RemoteModule({cls}, key={self.key!r})"


class RemoteMethod:
    """A method of a remote instance, called like the local one."""

    def __init__(self, module: RemoteModule, name: str, kind: CallKind) -> None:
        self.module = module
        self.name = name
        self.kind = kind

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the method on the cluster."""
        system, key = self.module._target()
        stream_logs = bool(kwargs.pop("stream_logs", self.module.stream_logs))
        return invoke(system, key, self.name, args, kwargs, self.kind, stream_logs)

    def __repr__(self) -> str:
        return f"RemoteMethod({self.name!r} of {self.module!r})"


class RemoteAttributes:
    """Reads and writes attributes of a remote instance."""

    def __init__(self, module: RemoteModule) -> None:
        object.__setattr__(self, "_module", module)

    def __getattr__(self, attr: str) -> Any:
        system, key = self._module._target()
        return system.request_call(key, attr, stream_logs=False, op="getattr")

    def __setattr__(self, attr: str, value: Any) -> None:
        system, key = self._module._target()
        system.request_call(key, attr, (value,), stream_logs=False, op="setattr")


def _is_method(member: Any) -> bool:
    return isinstance(member, (staticmethod, classmethod)) or inspect.isroutine(member)


def _key(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def module(
    cls: type | None = None,
    name: str | None = None,
    system: Cluster | str | None = None,
    env: Env | str | list[str] | None = None,
) -> Any:
    """A class to send to a cluster (``rh.module(Cls).to(c)``); given only a name, load it."""
    if cls is None:
        if name is None:
            raise TypeError("rh.module needs a class, or the name of a saved module")
        return Resource.from_name(name)
    made = ModuleClass(cls, name=name, env=as_env(env))
    return made.to(system, env=env) if system is not None else made
