"""A cluster's way to its daemon: one shared client per daemon, reopened or restarted as needed.

    >>> connection = DaemonConnection(cluster)     # anything with the three fields of Reachable
    >>> connection.with_client(lambda c: c.json("GET", "/_rh/status"))

A broken tunnel is reopened and a crashed daemon restarted (when ``autostart_daemon`` is on),
but a request the daemon may already have received is never sent again: a call that was
under way fails with ``CallInterruptedError`` saying what became of the daemon. A restarted
daemon is sent this client's functions and classes again (see ``runhouse.client.sent``).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from runhouse.client import den_auth
from runhouse.client.hosts import DaemonHost
from runhouse.client.http import ClusterClient, DaemonUnreachable, Decode
from runhouse.client.sent import Sent, run_keys
from runhouse.config import configs
from runhouse.exceptions import CallInterruptedError, DaemonError
from runhouse.wire.exposure import Exposure
from runhouse.wire.serialization import loads

log = logging.getLogger("runhouse")
T = TypeVar("T")


class Reachable(Protocol):
    """What a connection needs to know of its cluster (read at each use: they may change)."""

    server_port: int

    @property
    def daemon_host(self) -> DaemonHost:
        """Where the daemon runs."""

    @property
    def exposure(self) -> Exposure:
        """How the daemon listens."""


class DaemonConnection:
    """The client of one cluster's daemon, found, started or reopened on demand."""

    def __init__(self, cluster: Reachable) -> None:
        self.cluster = cluster
        self.client: ClusterClient | None = None
        self._lock = threading.Lock()
        self._daemon: tuple[Any, Any] | None = None  # (pid, start time) of the daemon reached
        self._sent: Sent | None = None  # a dropped client's record, for the next client
        self._instance: str | None = None  # the reached daemon's instance id, once asked
        _live_connections.add(self)

    def _host(self) -> DaemonHost:
        return self.cluster.daemon_host

    def call(
        self,
        key: str,
        method: str,
        payload: bytes,
        params: dict[str, str],
        stream_logs: bool,
        timeout: float | None = None,
        decode: Decode = loads,
    ) -> Any:
        """Call ``key.method`` at most once: under a run key (``params``' own, a run name, or
        a new one), which the daemon refuses to run twice; a call lost on the way raises
        ``CallInterruptedError``. ``decode`` turns the result's bytes into its value."""
        run_key = params.setdefault("run_key", run_keys.new(key))
        return self.at_most_once(
            f"{key}.{method}",
            run_key,
            lambda c: c.call(key, method, payload, params, stream_logs, timeout, decode),
        )

    def at_most_once(self, call: str, run_key: str, action: Callable[[ClusterClient], T]) -> T:
        """Run ``action``, which sends ``call`` under ``run_key``; if it may have reached the
        daemon and was lost on the way, raise ``CallInterruptedError`` (never send it again)."""
        try:
            return self.with_client(action, idempotent=False)
        except DaemonUnreachable as exc:
            if exc.before_sending:
                raise
            raise CallInterruptedError(call, run_key, exc.daemon, exc.address) from exc

    def with_client(self, action: Callable[[ClusterClient], T], idempotent: bool = True) -> T:
        """Run ``action`` with a live client; reconnect (or restart the daemon) if it is gone,
        and do it again if it is ``idempotent`` (storing an object, a query; not a call)."""
        client = self.client or self.connected(autostart=configs.get("autostart_daemon"))
        try:
            return action(client)
        except DaemonUnreachable as exc:
            info = self._host().info()
            running = info is not None
            if not exc.before_sending:
                if info is None:
                    exc.daemon = "died"
                elif _identity(info) != self._daemon:
                    exc.daemon = "restarted"
                if not idempotent:
                    # The daemon may have the request: never send it twice. Say what became
                    # of it.
                    if exc.daemon != "connection":
                        with self._lock:
                            self.drop()
                    raise
            with self._lock:
                self.drop()
            if running:  # the way there broke (a dead tunnel): open it again
                log.warning("The connection to the daemon of %s broke; reopening it.", self.cluster)
                return action(self.connected(autostart=False))
            if not configs.get("autostart_daemon"):
                raise
            log.warning(
                "The Runhouse daemon of %s is gone (crashed or stopped); restarting it.",
                self.cluster,
            )
            return action(self.connected(autostart=True))

    def connected(self, autostart: bool) -> ClusterClient:
        """The client of the running daemon; started first if ``autostart`` and none runs."""
        with self._lock:
            if self.client is None:
                info = self._host().info()
                if info is not None:
                    self.client = self._client_for(info)
                elif autostart:
                    log.info(
                        "Starting the local Runhouse daemon (none was running); "
                        "set autostart_daemon to false to turn this off."
                    )
                    self.client = self._start()
                else:
                    raise DaemonError(
                        f"No Runhouse daemon runs for {self.cluster}; start one with "
                        "`runhouse start` or c.up_if_not() (autostart_daemon is off)."
                    )
            return self.client

    def restart(self) -> None:
        """Stop the daemon (and its workers) and start it again."""
        with self._lock:
            self.drop()
            self._host().stop()
            self.client = self._start()

    def instance(self) -> str | None:
        """The instance id of the daemon this connection reaches now (asked once per
        daemon); None when not connected: asking never starts a daemon."""
        client = self.client
        if client is None:
            return None
        if self._instance is None:
            try:
                self._instance = client.json("GET", "/_rh/health").get("instance")
            except DaemonError:
                return None
        return self._instance

    def drop(self) -> None:
        """Forget the client (its pooled connections are closed); the next use reconnects."""
        self._instance = None
        if self.client is not None:
            self._sent = self.client.sent  # what it sent goes on to the next daemon's client
            _forget_client(self.client)
            self.client = None

    def _start(self) -> ClusterClient:
        how = den_auth.startable(self.cluster.exposure)
        return self._client_for(self._host().start(self.cluster.server_port, how))

    def _client_for(self, info: dict[str, Any]) -> ClusterClient:
        host = self._host()
        address, port = host.endpoint(info)
        token = den_auth.token(self.cluster.exposure, host, info)
        client = _shared_client(address, port, token, host.certificate(info))
        self._daemon = _identity(info)
        if self._sent is not None and self._sent is not client.sent:
            client.sent.absorb(self._sent)
        self._sent = None
        return client


# One client per daemon, whichever Cluster objects point at it, so connections are reused.
_clients: dict[tuple[str, int, str | None, str | None], ClusterClient] = {}
_clients_lock = threading.Lock()


def _shared_client(host: str, port: int, token: str | None, cert: str | None) -> ClusterClient:
    with _clients_lock:
        client = _clients.get((host, port, token, cert))
        if client is None:
            client = ClusterClient(host, port, token, certificate=cert)
            _clients[(host, port, token, cert)] = client
        return client


def _forget_client(client: ClusterClient) -> None:
    key = (client.host, client.port, client.token, client.certificate)
    with _clients_lock:
        if _clients.get(key) is client:  # not a newer client of a daemon at the same address
            del _clients[key]
    client.close()


def _identity(info: dict[str, Any]) -> tuple[Any, Any]:
    # A daemon's pid and start time tell a restarted daemon from the one a client reached.
    return info.get("pid"), info.get("started")


_live_connections: weakref.WeakSet[DaemonConnection] = weakref.WeakSet()


def _reset_locks() -> None:
    # A lock a parent's thread held when it forked stays held forever in the child.
    global _clients_lock
    _clients_lock = threading.Lock()
    for connection in list(_live_connections):
        connection._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks)
