"""What a client sent to a daemon, to send again when a new instance of the daemon answers.

A daemon holds objects in memory only: after a restart (a crash, ``runhouse restart``) the
new instance has none. Functions and classes, and the envs they run in, are kept here as the
bytes that were sent, and sent again once, when a key this client sent is missing and the
daemon's instance id changed; objects with state (``c.put`` values, module instances,
results kept with ``.remote()``) cannot be rebuilt, so only their keys are kept, to say that
they were lost.

    >>> client.sent.sent("add", blob, "base", None, resource=True)
    >>> not_found(client, "add", [], restore=True)    # Restored: call again
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from itertools import count
from typing import TYPE_CHECKING, Any

from runhouse.exceptions import ObjectLostError, ObjectNotFoundError

if TYPE_CHECKING:
    from runhouse.client.http import ClusterClient

log = logging.getLogger("runhouse")
_KEEP_KEYS = 10_000  # keys of objects with state (and of lost ones) remembered per daemon


class Sent:
    """One daemon's record; plain dicts, so threads may race on it (sending twice is harmless)."""

    def __init__(self) -> None:
        self.instance: str | None = None  # the daemon instance these were sent to
        self.envs: dict[str, Any] = {}  # env name -> its declaration (the JSON body)
        # env name -> the secret variables set in its workers (the daemon keeps them in
        # memory only: a restarted daemon gets them again from here)
        self.secrets: dict[str, dict[str, str]] = {}
        self.resources: dict[str, tuple[bytes, str, str | None]] = {}  # key -> blob, env, path
        self.state: OrderedDict[str, None] = OrderedDict()  # keys a restart loses, newest last
        self.lost: OrderedDict[str, None] = OrderedDict()  # such keys the last restart lost

    def sent(self, key: str, blob: bytes, env: str, path: str | None, resource: bool) -> None:
        """Record an object put under ``key``: a ``resource`` (code) can be sent again."""
        if resource:
            self.forget(key)
            self.resources[key] = (blob, env, path)
        else:
            self.stateful(key)

    def stateful(self, key: str) -> None:
        """Record the key of an object whose state a restart loses."""
        self.forget(key)
        _add(self.state, key)

    def forget(self, key: str) -> None:
        """Drop a key (deleted, or replaced)."""
        self.resources.pop(key, None)
        self.state.pop(key, None)
        self.lost.pop(key, None)

    def forget_all(self) -> None:
        """Drop every key (the daemon was cleared); envs stay declared."""
        self.resources.clear()
        self.state.clear()
        self.lost.clear()

    def rename(self, old: str, new: str) -> None:
        """The daemon moved ``old`` to ``new``: so does the record."""
        if old in self.resources:
            self.resources[new] = self.resources.pop(old)
        elif old in self.state:
            self.forget(old)
            _add(self.state, new)

    def knows(self, key: str) -> bool:
        """Whether this client sent (or made) ``key``."""
        return key in self.resources or key in self.state

    def restarted(self, instance: str) -> None:
        """The daemon is now ``instance``, sent the resources again: the state is lost."""
        for key in self.state:
            _add(self.lost, key)
        self.state.clear()
        self.instance = instance

    def absorb(self, other: Sent) -> None:
        """Take over what ``other`` (the record of a client replaced by this one) holds."""
        for name, spec in other.envs.items():
            self.envs.setdefault(name, spec)
        for name, variables in other.secrets.items():
            self.secrets[name] = {**variables, **self.secrets.get(name, {})}
        for key, value in other.resources.items():
            if not self.knows(key):
                self.resources[key] = value
        for key in other.state:
            if not self.knows(key):
                _add(self.state, key)
        for key in other.lost:
            _add(self.lost, key)
        if other.instance is not None:
            self.instance = other.instance  # what it sent lives in that instance


class Restored(ObjectNotFoundError):
    """The daemon restarted and has just been sent this client's code again: call again."""


def not_found(
    client: ClusterClient, key: str, keys: list[str], restore: bool
) -> ObjectNotFoundError:
    """The error for ``key``, which the daemon lacks. A key the client sent makes it check
    for a restart (and ``restore``): ``ObjectLostError`` for state the restart lost,
    ``Restored`` for code sent again."""
    sent = client.sent
    if key in sent.lost:
        return ObjectLostError(key, client.base_url)
    if not sent.knows(key):
        return ObjectNotFoundError(key, keys)
    if restore:
        restore_after_restart(client)
        if key in sent.lost:
            return ObjectLostError(key, client.base_url)
        if key in sent.resources:  # sent again now (or by another thread just before)
            return Restored(key, keys)
    sent.forget(key)  # the same daemon lacks it: it was deleted
    return ObjectNotFoundError(key, keys)


def restore_after_restart(client: ClusterClient) -> bool:
    """If the daemon is a new instance, send it the envs (and their secret variables),
    functions and classes sent to the old one again (objects with state are lost); whether
    it was a new one."""
    sent, current = client.sent, client.learn_instance()
    if sent.instance is None or not current or current == sent.instance:
        return False
    log.warning(
        "The daemon at %s restarted; sending it this client's %d functions and classes again.",
        client.base_url,
        len(sent.resources),
    )
    for name, spec in list(sent.envs.items()):
        client.declare_env(name, spec)
    for name, variables in list(sent.secrets.items()):
        client.json("PUT", f"/_rh/secrets/{name}", {"env_vars": variables})
    for key, (blob, env, path) in list(sent.resources.items()):
        client.send_object(key, blob, env, True, path)
    sent.restarted(current)
    return True


def _add(keys: OrderedDict[str, None], key: str) -> None:
    keys[key] = None
    keys.move_to_end(key)
    if len(keys) > _KEEP_KEYS:
        keys.popitem(last=False)


class RunKeys:
    """Run keys made here, unique without a syscall each: a random prefix and a counter."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        """A new prefix (a forked child must not make its parent's keys)."""
        self._prefix = secrets.token_hex(6)
        self._counter = count(1)

    def new(self, key: str) -> str:
        """A fresh run key for a call of ``key``."""
        return f"{key[:200]}@{self._prefix}{next(self._counter):x}"


run_keys = RunKeys()
