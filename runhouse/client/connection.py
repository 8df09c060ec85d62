"""A cluster's way to its daemon: one shared client per daemon, reopened or restarted as needed.

    >>> connection = DaemonConnection(cluster)     # anything with the three fields of Reachable
    >>> connection.with_client(lambda c: c.json("GET", "/_rh/status"))

A broken tunnel is reopened and a crashed daemon restarted (when ``autostart_daemon`` is on),
but a request the daemon may already have received is never sent again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from runhouse.client.hosts import DaemonHost
from runhouse.client.http import ClusterClient, DaemonUnreachable
from runhouse.config import configs
from runhouse.exceptions import DaemonError
from runhouse.wire.exposure import Exposure

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

    def _host(self) -> DaemonHost:
        return self.cluster.daemon_host

    def with_client(self, action: Callable[[ClusterClient], T]) -> T:
        """Run ``action`` with a live client; reconnect (or restart the daemon) if it is gone."""
        client = self.client or self.connected(autostart=configs.get("autostart_daemon"))
        try:
            return action(client)
        except DaemonUnreachable as exc:
            running = self._host().info() is not None
            if running and not exc.before_sending:
                raise  # the daemon runs and may have the request: do not send it twice
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

    def drop(self) -> None:
        """Forget the client (its pooled connections are closed); the next use reconnects."""
        if self.client is not None:
            _forget_client(self.client)
            self.client = None

    def _start(self) -> ClusterClient:
        return self._client_for(self._host().start(self.cluster.server_port, self.cluster.exposure))

    def _client_for(self, info: dict[str, Any]) -> ClusterClient:
        host = self._host()
        address, port = host.endpoint(info)
        token = host.token() if info.get("auth", True) else None
        return _shared_client(address, port, token, host.certificate(info))


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
    with _clients_lock:
        _clients.pop((client.host, client.port, client.token, client.certificate), None)
    client.close()
