"""A handle on a value kept on a cluster (what ``fn.remote()`` returns), and how handles
travel as arguments.

    >>> ref = preprocess.remote(raw)          # the result stays on the cluster
    >>> train(ref)                            # arrives there as the value, not via here
    >>> ref.fetch()                           # or bring it here

A ref (or a remote module instance) passed to a call on its own cluster pickles as its key
(``runhouse.wire.refs``): the worker puts the object in its place, and the daemon brings
objects held by other envs' workers along. Refs to another cluster arrive as refs, which
code there can ``fetch()``. Refs are looked for in tuples, lists, sets and dicts, and only
while this process holds any, so calls without refs pay nothing for them.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from runhouse.wire.refs import resolve_ref

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

# Weak references to every live ref: a plain set, whose emptiness is the cheapest check.
ALIVE: set[weakref.ref[Ref]] = set()
_marked: ContextVar[frozenset[int] | None] = ContextVar("rh_marked_refs", default=None)


class Ref:
    """Something kept on a cluster under a key: sent to that cluster, it is the object."""

    system: Cluster | None
    key: str | None

    def __reduce_ex__(self, protocol: Any) -> Any:
        marked = _marked.get()
        if marked is not None and id(self) in marked:
            return (resolve_ref, (self.key,))
        return super().__reduce_ex__(protocol)


def track(ref: Ref) -> None:
    """Count ``ref`` among the live refs, whose presence makes calls look for them."""
    ALIVE.add(weakref.ref(ref, ALIVE.discard))


def refs_to(system: Cluster, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Ref]:
    """The refs to objects on ``system`` among the arguments (none, cheaply, if no ref
    exists in this process)."""
    if not ALIVE:
        return []
    found: list[Ref] = []
    seen: set[int] = set()
    stack: list[Any] = [args, kwargs]
    while stack:
        value = stack.pop()
        if isinstance(value, Ref):
            if value.key is not None and _same_cluster(value.system, system):
                found.append(value)
        elif isinstance(value, (tuple, list, set, frozenset, dict)) and id(value) not in seen:
            seen.add(id(value))  # a container holding itself is walked once
            stack.extend(value.values() if isinstance(value, dict) else value)
    return found


@contextlib.contextmanager
def sent_as_keys(refs: list[Ref]) -> Iterator[None]:
    """Inside this block, pickling ``refs`` gives their keys, for the worker to resolve."""
    token = _marked.set(frozenset(id(r) for r in refs))
    try:
        yield
    finally:
        _marked.reset(token)


def _same_cluster(a: Cluster | None, b: Cluster) -> bool:
    # Told apart by where their daemons are, without connecting to either.
    return a is b or (a is not None and _daemon_of(a) == _daemon_of(b))


def _daemon_of(c: Cluster) -> tuple[Any, ...]:
    host = tuple(c.host) if isinstance(c.host, list) else c.host
    return (host, c.ssh_port, c.server_port, c.ssh_creds.get("ssh_user"))


class ObjectRef(Ref):
    """A handle on an object kept on a cluster (what ``fn.remote()`` returns)."""

    def __init__(self, system: Cluster, key: str) -> None:
        self.system: Cluster = system
        self.key: str = key
        track(self)

    def resolve(self) -> ObjectRef:
        """The ref itself: a ref passed to a call on its cluster always arrives as its value
        (the original API marked such refs with ``resolve()``)."""
        return self

    def fetch(self) -> Any:
        """The object's value, brought here."""
        return self.system._with_client(
            lambda c: c.value("GET", f"/_rh/objects/{self.key}", self.key)
        )

    def delete(self) -> None:
        """Remove the object from the cluster."""
        self.system.delete(self.key)

    def __repr__(self) -> str:
        return f"ObjectRef(key={self.key!r})"
