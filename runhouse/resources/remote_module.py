"""The proxy of an instance living on a cluster (``RemoteModule``) and of its methods.

    >>> counter = Counter(start=1, name="counter")    # a RemoteModule
    >>> counter.increment(2)                          # runs there; state stays there
    >>> counter.increment.remote(2); counter.increment.run(2, run_name="inc")
    >>> counter.count = 5                             # set there, not here
    >>> counter.remote._secret; counter.fetch("_secret"); counter.fetch()
    >>> counter.local.unit                            # the local object's (or class's)

User classes are never wrapped: the proxy is its own class, and names it does not have
itself belong to the remote instance.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, Protocol

from runhouse.client.invoke import CallKind, kind_of, pop_options
from runhouse.client.shipping import pointers
from runhouse.resources import remote_call
from runhouse.resources.cluster import as_cluster
from runhouse.resources.env import Env, as_env
from runhouse.resources.object_ref import ObjectRef, Ref, track
from runhouse.resources.resource import Resource

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

MISSING = object()
# The proxy's own fields: assigned here. Any other public name is the remote instance's.
_PROXY_FIELDS = frozenset({"name", "system", "key", "cls", "env", "cls_pointers", "stream_logs"})


class RemoteModule(Ref, Resource):
    """The proxy of an instance living on a cluster: its methods run there, and its public
    attributes are read and assigned there (``m.count``, ``m.count = 5``)."""

    resource_type = "module"
    _local: Any = None  # the object this proxy was sent from (``Module.to``), if any

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
        track(self)  # passed to a call on its cluster, it arrives as the instance itself

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
        """Attributes of the remote instance, private ones too: ``m.remote._x`` reads,
        ``m.remote._x = 1`` writes."""
        return RemoteAttributes(self)

    @property
    def local(self) -> LocalAttributes:
        """Attributes of the local object this proxy was sent from (or of its class), read
        here without a call: ``m.local.unit``."""
        return LocalAttributes(self)

    def fetch(self, attr: str | None = None) -> Any:
        """The whole remote instance, brought here; or one attribute of it (private too)."""
        system, key = self._target()
        if attr is None:
            return ObjectRef(system, key).fetch()
        return system.request_call(key, attr, stream_logs=False, op="getattr")

    async def fetch_async(self, attr: str | None = None) -> Any:
        """``fetch``, awaitable (the original's spelling for async code)."""
        return await asyncio.to_thread(self.fetch, attr)

    async def set_async(self, attr: str, value: Any) -> None:
        """``m.remote.attr = value``, awaitable (the original's spelling for async code)."""
        await asyncio.to_thread(self.remote.__setattr__, attr, value)

    def call_method(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method by name (for names the proxy itself uses, and private methods)."""
        return RemoteMethod(self, method, method_kind(self.cls, method))(*args, **kwargs)

    def endpoint(self, external: bool = False) -> str | None:
        """The instance's URL on its cluster (``POST {endpoint}/{method}`` calls a method);
        with ``external=True``, None when only this machine reaches the daemon."""
        system, key = self._target()
        return remote_call.endpoint(system, key, external)

    def resolve(self) -> RemoteModule:
        """The proxy itself: passed to a call on its cluster it always arrives as the
        instance (the original API marked that with ``resolve()``)."""
        return self

    def save(self, name: str | None = None, *args: Any, **kwargs: Any) -> RemoteModule:
        """Store the config (see ``Resource.save``); unnamed, under its key on the cluster."""
        if name is None and self.name is None:
            name = self.key
        return super().save(name, *args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        # Only reached for names the proxy does not have: those belong to the remote instance.
        if attr.startswith("_"):
            raise AttributeError(attr)  # Python's own probes, and the proxy's unset fields
        cls = self.__dict__.get("cls")
        member = inspect.getattr_static(cls, attr, MISSING) if cls is not None else MISSING
        if cls is not None and (member is MISSING or not is_method(member)):
            return self.remote.__getattr__(attr)  # an attribute or a property
        return RemoteMethod(self, attr, method_kind(cls, attr))

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr.startswith("_") or attr in _PROXY_FIELDS or hasattr(type(self), attr):
            super().__setattr__(attr, value)
        else:  # the remote instance's: a local copy would silently diverge from it
            self.remote.__setattr__(attr, value)

    def _target(self) -> tuple[Cluster, str]:
        if self.system is None or self.key is None:
            raise ValueError("This module proxy has no cluster; it was not sent anywhere.")
        return self.system, self.key

    def __repr__(self) -> str:
        cls = self.cls.__name__ if self.cls is not None else "?"
        return f"RemoteModule({cls}, key={self.key!r})"


class _Owner(Protocol):
    """What a remote method is a method of: a remote instance or a remote class."""

    stream_logs: bool

    def _target(self) -> tuple[Cluster, str]: ...


class RemoteMethod:
    """A method of a remote instance or class, called like the local one; also
    ``.remote()`` (an ObjectRef), ``.run()`` (a run key), ``.get(key)`` and
    ``.get_or_call(run_name, ...)``, as on functions."""

    def __init__(self, owner: _Owner, name: str, kind: CallKind) -> None:
        self.owner = owner
        self.name = name
        self.kind = kind

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the method on the cluster (reserved keywords as for functions)."""
        system, key = self.owner._target()
        options = pop_options(kwargs, self.owner.stream_logs)
        return remote_call.call(system, key, self.name, args, kwargs, self.kind, options)

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Run the method and keep its result on the cluster; returns a handle to it."""
        kwargs["remote"] = True
        return self(*args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> str:
        """Start the method and return its run key at once (``run_name=`` names it)."""
        system, key = self.owner._target()
        return remote_call.start(system, key, self.name, args, kwargs)

    def get(self, run_key: str) -> Any:
        """Wait for the run ``run_key`` (from ``run``) and return its result."""
        system, _ = self.owner._target()
        return system.result(run_key)

    def get_or_call(self, run_name: str, *args: Any, load: bool = True, **kwargs: Any) -> Any:
        """The result kept under ``run_name`` if there is one, else call the method with
        these arguments and keep its result under that name."""
        system, key = self.owner._target()
        options = pop_options(kwargs, self.owner.stream_logs)

        def run(plain: Any) -> Any:
            return remote_call.call(system, key, self.name, args, kwargs, self.kind, plain)

        return remote_call.get_or_call(system, run_name, load, run, self.kind, options)

    def __repr__(self) -> str:
        return f"RemoteMethod({self.name!r} of {self.owner!r})"


class RemoteAttributes:
    """Reads and writes attributes of a remote instance, private ones included."""

    def __init__(self, module: RemoteModule) -> None:
        object.__setattr__(self, "_module", module)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # copy, pickle and IPython probe these: answer here
        system, key = self._module._target()
        return system.request_call(key, attr, stream_logs=False, op="getattr")

    def __setattr__(self, attr: str, value: Any) -> None:
        system, key = self._module._target()
        remote_call.send(system, key, attr, (value,), {}, stream_logs=False, op="setattr")


class LocalAttributes:
    """Attributes of the local object a proxy was sent from, or of its class: no call."""

    def __init__(self, module: RemoteModule) -> None:
        object.__setattr__(self, "_module", module)

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        source = module._local if module._local is not None else module.cls
        if source is None:
            raise AttributeError(f"{attr!r}: {module!r} has no local object or class here")
        return getattr(source, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        local = self._module._local
        if local is None:
            raise AttributeError(
                f"{self._module!r} was constructed on the cluster: there is no local object "
                "to set attributes on (use m.remote.x = value)"
            )
        setattr(local, attr, value)


def is_method(member: Any) -> bool:
    """Whether a class member (from ``inspect.getattr_static``) is called, not read."""
    return isinstance(member, (staticmethod, classmethod)) or inspect.isroutine(member)


def method_kind(cls: type | None, method: str) -> CallKind:
    """The call style of ``cls.method`` (sync when the class is not here)."""
    member = inspect.getattr_static(cls, method, None) if cls is not None else None
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    return kind_of(member) if callable(member) else "sync"
