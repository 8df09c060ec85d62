"""``Cluster``: compute with a Runhouse daemon; here, the daemon on this machine.

>>> c = rh.cluster(name="local")          # the daemon starts on first use if needed
>>> c.put("answer", 42); c.get("answer")
42
>>> c.keys(), c.status()["envs"][0]["worker"]["pid"]
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from runhouse.client import local_daemon, workdir
from runhouse.client.hosts import DaemonHost, LocalHost, SSHHost, free_port
from runhouse.client.http import ClusterClient, DaemonUnreachable
from runhouse.client.runners.base import CommandRunner
from runhouse.client.runners.ssh import SSHRunner
from runhouse.client.shipping import ship
from runhouse.config import configs
from runhouse.exceptions import DaemonError, ObjectNotFoundError, ResourceNotFoundError
from runhouse.fileio import atomic_write
from runhouse.resources.env import Env, as_env, code_root
from runhouse.resources.resource import Resource
from runhouse.wire import versions
from runhouse.wire.exposure import Exposure
from runhouse.wire.serialization import dumps

log = logging.getLogger("runhouse")
SSH_CRED_FIELDS = ("ssh_user", "ssh_private_key")  # a key's path, never its contents
T = TypeVar("T")
BASE_ENV = "base"


class Cluster(Resource):
    """A machine (or machines) running a Runhouse daemon that holds objects and runs calls."""

    resource_type = "cluster"

    def __init__(
        self,
        name: str | None = None,
        server_port: int = local_daemon.DEFAULT_PORT,
        host: str | list[str] | None = None,
        ssh_creds: dict[str, str] | None = None,
        ssh_port: int | None = None,
        server_connection_type: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        den_auth: bool = False,
        insecure: bool = False,
    ) -> None:
        super().__init__(name=name)
        self.server_port = server_port
        self.host = host
        self.ssh_creds = {k: v for k, v in (ssh_creds or {}).items() if k in SSH_CRED_FIELDS}
        self.ssh_port = ssh_port
        self.server_connection_type = server_connection_type or ("ssh" if host else "none")
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.den_auth = den_auth
        self.insecure = insecure
        _check_connection_settings(self)
        self._client: ClusterClient | None = None
        self._daemon_host: DaemonHost | None = None
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        """The cluster's config (a key's path is kept, never a secret's value)."""
        return {
            **super().config(),
            "host": self.host,
            "server_port": self.server_port,
            "ssh_creds": dict(self.ssh_creds),
            "ssh_port": self.ssh_port,
            "server_connection_type": self.server_connection_type,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "den_auth": self.den_auth,
            "insecure": self.insecure,
        }

    @property
    def exposure(self) -> Exposure:
        """How this cluster's daemon listens: loopback behind SSH, or exposed (TLS or not)."""
        exposed = self.host is not None and self.server_connection_type != "ssh"
        return Exposure(
            host="0.0.0.0" if exposed else "127.0.0.1",
            tls=self.server_connection_type == "tls",
            certfile=self.ssl_certfile,
            keyfile=self.ssl_keyfile,
            auth=not self.insecure,
            insecure=self.insecure,
        )

    @property
    def daemon_host(self) -> DaemonHost:
        """Where the daemon runs: this machine, or the (first) host over SSH."""
        if self._daemon_host is None:
            if not self.host:
                self._daemon_host = LocalHost()
            else:
                runner = self._ssh_runner(self.ips[0])
                self._daemon_host = SSHHost(runner, tunnel=self.server_connection_type == "ssh")
        return self._daemon_host

    @property
    def ips(self) -> list[str]:
        """The cluster's hosts, the head (where the daemon runs) first; none for this machine."""
        if not self.host:
            return []
        return list(self.host) if isinstance(self.host, list) else [self.host]

    def _ssh_runner(self, host: str) -> SSHRunner:
        return SSHRunner(
            host,
            user=self.ssh_creds.get("ssh_user"),
            port=self.ssh_port,
            key=self.ssh_creds.get("ssh_private_key"),
        )

    def _runners(self, node: str | None) -> dict[str, CommandRunner]:
        # node: None for the head, "all" for every host, or one host of the cluster.
        ips = self.ips
        if node is None or (ips and node == ips[0]) or (not ips and node == "all"):
            return {ips[0] if ips else "localhost": self.runner}
        if node == "all":
            return {ips[0]: self.runner, **{ip: self._ssh_runner(ip) for ip in ips[1:]}}
        if node not in ips:
            raise ValueError(
                f"{node!r} is not a host of {self}; use one of {ips}, 'all', or None (the head)"
            )
        return {node: self._ssh_runner(node)}

    def _loadable_by_address(self) -> bool:
        # ".../local" on the default port loads as this machine's daemon, saved or not.
        default_local = self.host is None and self.server_port == local_daemon.DEFAULT_PORT
        if default_local and (self.rns_address or "").rsplit("/", 1)[-1] == "local":
            return True
        return super()._loadable_by_address()

    def __getstate__(self) -> dict[str, Any]:
        # A cluster travels (inside a function sent elsewhere) without its live connections.
        state = self.__dict__.copy()
        state["_client"] = None
        state["_daemon_host"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def is_up(self) -> bool:
        """Whether the daemon is running and answers its health check."""
        if self.daemon_host.info() is None:
            return False
        try:
            self._connected(autostart=False).json("GET", "/_rh/health")
        except DaemonError:
            return False
        return True

    def up_if_not(self) -> Cluster:
        """Start the daemon if it is not running; returns ``self``."""
        self._connected(autostart=True)
        return self

    def restart_server(self) -> Cluster:
        """Stop the daemon (and its workers) and start it again; objects are lost."""
        with self._lock:
            self._drop_client()
            self.daemon_host.stop()
            self._client = self._start_client()
        return self

    def status(self) -> dict[str, Any]:
        """Envs, workers (pid, memory), objects per env, uptime and versions."""
        return self._with_client(lambda c: c.json("GET", "/_rh/status"))

    # -- commands ----------------------------------------------------------------------

    @property
    def runner(self) -> CommandRunner:
        """How commands reach this cluster's machine (a local shell, or SSH)."""
        return self.daemon_host.runner

    @overload
    def run(  # type: ignore[overload-overlap]
        self,
        commands: str | list[str],
        env: Env | str | None = None,
        stream_logs: bool = True,
        *,
        node: Literal["all"],
    ) -> dict[str, list[tuple[int, str, str]]]: ...

    @overload
    def run(
        self,
        commands: str | list[str],
        env: Env | str | None = None,
        stream_logs: bool = True,
        node: str | None = None,
    ) -> list[tuple[int, str, str]]: ...

    def run(
        self,
        commands: str | list[str],
        env: Env | str | None = None,
        stream_logs: bool = True,
        node: str | None = None,
    ) -> list[tuple[int, str, str]] | dict[str, list[tuple[int, str, str]]]:
        """Run shell commands on the head (in ``env``'s Python and variables, if given), on
        ``node``, or on every host (``node="all"``: ``{host: results}``); a result is
        ``(returncode, stdout, stderr)``, and a failing command never raises."""
        runners = self._runners(node)
        if env is not None and list(runners) != self.ips[:1] and self.ips:
            raise ValueError(
                "envs live on the head node (the first host): run commands in an env there "
                "(node=None), or without env= on other nodes"
            )
        variables: dict[str, str] = {}
        if env is not None:
            name = self.ensure_env(env)
            record = next((e for e in self.status()["envs"] if e["name"] == name), None)
            if record is not None:
                bin_dir = str(Path(record["python"]).parent)
                variables["PATH"] = f"{bin_dir}:{os.environ.get('PATH', '')}"
            if isinstance(env, Env):
                variables.update(env.resolved_env_vars())
        results = {
            ip: runner.run(commands, env=variables or None, stream_logs=stream_logs)
            for ip, runner in runners.items()
        }
        return results if node == "all" else next(iter(results.values()))

    def run_python(self, lines: str | list[str], stream_logs: bool = True) -> tuple[int, str, str]:
        """Run Python code with the cluster's ``python3``."""
        return self.runner.run_python(lines, stream_logs=stream_logs)

    def rsync(self, source: str, dest: str, up: bool = True, node: str | None = None) -> None:
        """Copy files to (``up``) or from the head (or ``node``; ``"all"``: to every host),
        honouring ``.gitignore``."""
        if node == "all" and not up:
            raise ValueError("rsync from every node into one folder would mix them: pick a node")
        for runner in self._runners(node).values():
            runner.rsync(source, dest, up=up)

    def ssh(self, *command: str) -> int:
        """An interactive shell on the cluster's host (or ``command``); its exit code."""
        runner = self._ssh_host().runner
        return subprocess.call(["ssh", "-t", *runner.options(), runner.target, *command])

    def ssh_tunnel(self, local_port: int | None = None, remote_port: int | None = None) -> int:
        """Forward a local port (default: a free one) to ``remote_port`` on the host (default:
        the daemon's); returns the local port. It lives as long as the SSH connection."""
        host = self._ssh_host()
        if remote_port is None:
            info = host.info()
            if info is None:
                raise DaemonError(f"No daemon runs on {self}; give remote_port, or up_if_not()")
            remote_port = int(info["port"])
        return host.forward(local_port or free_port(), remote_port)

    def _ssh_host(self) -> SSHHost:
        host = self.daemon_host
        if not isinstance(host, SSHHost):
            raise ValueError(f"{self} is this machine: there is no SSH host to connect to")
        return host

    # -- objects -----------------------------------------------------------------------

    def put(self, key: str, obj: Any, env: Env | str | None = None) -> None:
        """Store ``obj`` under ``key`` in ``env``'s worker (default: the base env)."""
        env_name = self.ensure_env(env)
        body = ship(obj, f"object {key!r}")
        self._with_client(lambda c: c.send_object(key, body, env_name, resource=False))

    def put_resource(self, key: str, obj: Any, env: Env | str | None = None) -> None:
        """Store a function or class; it survives a worker restart (it is sent again).

        The env's working dir (default: the project root) goes on the worker's import path,
        and code importable from it is sent by reference.
        """
        env_name = self.ensure_env(env)
        self._check_versions(env_name)
        root = code_root(env if isinstance(env, Env) else None)
        synced = self._sync_working_dir(root) if root is not None else None
        body = ship(obj, f"{key!r}", root if synced is not None else None)
        self._with_client(lambda c: c.send_object(key, body, env_name, resource=True, path=synced))

    def _sync_working_dir(self, root: Path) -> str | None:
        """Mirror the working dir where this cluster's workers import it from."""
        try:
            return self.daemon_host.sync_workdir(root)
        except workdir.WorkdirTooLarge as exc:
            log.warning("Not syncing the working dir (%s); code will be sent by value.", exc)
            return None

    def _check_versions(self, env_name: str) -> None:
        """Once per env and daemon: the env must run versions this client can talk to."""
        base_url = self._with_client(lambda c: c.base_url)
        if (base_url, env_name) in _checked_envs:
            return
        params = {"env": env_name}
        remote = self._with_client(lambda c: c.json("GET", "/_rh/versions", params=params))
        versions.check(versions.local_versions(), remote, env_name)
        _checked_envs.add((base_url, env_name))

    def get(self, key: str, default: Any = None) -> Any:
        """The object under ``key``, or ``default`` if there is none."""
        try:
            return self._with_client(lambda c: c.value("GET", f"/_rh/objects/{key}", key))
        except ObjectNotFoundError:
            return default

    def keys(self, env: Env | str | None = None) -> list[str]:
        """Keys of every object on the cluster, or of one env's."""
        params = {"env": _env_name(env)} if env is not None else None
        return list(self._with_client(lambda c: c.json("GET", "/_rh/keys", params=params)))

    def delete(self, keys: str | Iterable[str]) -> None:
        """Delete one key or several; ``KeyError`` for a key that is not there."""
        for key in [keys] if isinstance(keys, str) else list(keys):
            path = f"/_rh/objects/{key}"
            self._with_client(lambda c, path=path: c.json("DELETE", path))  # type: ignore[misc]

    def clear(self) -> None:
        """Delete every object on the cluster."""
        self._with_client(lambda c: c.json("POST", "/_rh/clear"))

    def cancel(self, key: str) -> list[str]:
        """Cancel a run (by the key ``.run()`` returned) or every running call of an object."""
        answer = self._with_client(lambda c: c.json("POST", f"/_rh/cancel/{key}"))
        return list(answer["cancelled"])

    def ensure_env(self, env: Env | str | None) -> str:
        """Declare ``env`` on the daemon (its variables) and return its name there."""
        if env is None or isinstance(env, str):
            return env or BASE_ENV
        name = _env_name(env)
        body = {
            "conda": getattr(env, "conda_env", None),
            "env_vars": env.resolved_env_vars(),
            "reqs": self.daemon_host.place_requirements(env.resolved_reqs()),
            "setup_cmds": list(env.setup_cmds),
        }
        self._with_client(lambda c: c.json("PUT", f"/_rh/envs/{name}", body))
        return name

    # -- calls -------------------------------------------------------------------------

    def call(
        self,
        key: str,
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        stream_logs: bool = True,
        **params: str,
    ) -> Any:
        """Call ``key.method(*args, **kwargs)`` on the cluster and return its result."""
        payload = dumps((args, kwargs or {}), f"the arguments of {key}.{method}")
        params = {"logs": "1" if stream_logs else "0", **params}
        return self._with_client(lambda c: c.call(key, method, payload, params, stream_logs))

    def call_map(
        self,
        key: str,
        method: str,
        items: list[tuple[tuple[Any, ...], dict[str, Any]]],
        stream_logs: bool = True,
    ) -> list[Any]:
        """Call ``key.method`` once per (args, kwargs), concurrently on the cluster."""
        payload = dumps(items, f"the arguments of {key}.{method}")
        params = {"logs": "1" if stream_logs else "0", "op": "map"}
        return list(self._with_client(lambda c: c.call(key, method, payload, params, stream_logs)))

    def run_detached(
        self, key: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], run_key: str
    ) -> str:
        """Start a call that outlives this client; returns its run key."""
        payload = dumps((args, kwargs), f"the arguments of {key}.{method}")
        params = {"detach": "1", "run_key": run_key}

        def start(c: ClusterClient) -> str:
            response = c.checked(
                c.request("POST", f"/{key}/{method}", payload, "application/octet-stream", params)
            )
            return str(response.json()["run_key"])

        return self._with_client(start)

    def result(self, run_key: str) -> Any:
        """Wait for a run started with ``run_detached`` and return its result."""
        return self._with_client(lambda c: c.value("GET", f"/_rh/runs/{run_key}", run_key))

    def endpoint(self) -> str:
        """The daemon's base URL."""
        return self._with_client(lambda c: c.base_url)

    def token(self) -> str | None:
        """The daemon's bearer token (for plain HTTP clients such as curl)."""
        return self._with_client(lambda c: c.token)

    def certificate_file(self) -> Path | None:
        """The daemon's TLS certificate saved as a file (for curl's ``--cacert``), or None."""
        pem = self._with_client(lambda c: c.certificate)
        if pem is None:
            return None
        digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
        path = Path.home() / ".rh" / "certs" / f"{digest}.pem"
        if not path.exists():
            atomic_write(path, pem)
        return path

    # -- connection --------------------------------------------------------------------

    def _with_client(self, action: Callable[[ClusterClient], T]) -> T:
        client = self._client or self._connected(autostart=configs.get("autostart_daemon"))
        try:
            return action(client)
        except DaemonUnreachable as exc:
            running = self.daemon_host.info() is not None
            if running and not exc.before_sending:
                raise  # the daemon runs and may have the request: do not send it twice
            with self._lock:
                self._drop_client()
            if running:  # the way there broke (a dead tunnel): open it again
                log.warning("The connection to the daemon of %s broke; reopening it.", self)
                return action(self._connected(autostart=False))
            if not configs.get("autostart_daemon"):
                raise
            log.warning(
                "The Runhouse daemon of %s is gone (crashed or stopped); restarting it.", self
            )
            return action(self._connected(autostart=True))

    def _connected(self, autostart: bool) -> ClusterClient:
        with self._lock:
            if self._client is None:
                info = self.daemon_host.info()
                if info is not None:
                    self._client = self._client_for(info)
                elif autostart:
                    log.info(
                        "Starting the local Runhouse daemon (none was running); "
                        "set autostart_daemon to false to turn this off."
                    )
                    self._client = self._start_client()
                else:
                    raise DaemonError(
                        f"No Runhouse daemon runs for {self}; start one with "
                        "`runhouse start` or c.up_if_not() (autostart_daemon is off)."
                    )
            return self._client

    def _start_client(self) -> ClusterClient:
        return self._client_for(self.daemon_host.start(self.server_port, self.exposure))

    def _client_for(self, info: dict[str, Any]) -> ClusterClient:
        host, port = self.daemon_host.endpoint(info)
        token = self.daemon_host.token() if info.get("auth", True) else None
        return _shared_client(host, port, token, self.daemon_host.certificate(info))

    def _drop_client(self) -> None:
        if self._client is not None:
            _forget_client(self._client)
            self._client = None


_checked_envs: set[tuple[str, str]] = set()  # (daemon URL, env) whose versions agree

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


_CONNECTION_TYPES = ("ssh", "tls", "none")


def _check_connection_settings(c: Cluster) -> None:
    """Bad combinations fail when the cluster is made, not when it is first used."""
    if c.server_connection_type not in _CONNECTION_TYPES:
        raise ValueError(
            f"server_connection_type must be one of {_CONNECTION_TYPES}, "
            f"not {c.server_connection_type!r}"
        )
    if c.server_connection_type == "ssh" and not c.host:
        raise ValueError('server_connection_type="ssh" needs a host')
    if (c.ssl_certfile or c.ssl_keyfile) and c.server_connection_type != "tls":
        raise ValueError('ssl_certfile/ssl_keyfile need server_connection_type="tls"')
    if bool(c.ssl_certfile) != bool(c.ssl_keyfile):
        raise ValueError("give both ssl_certfile and ssl_keyfile, or neither (self-signed)")
    if c.den_auth:
        raise ValueError(
            "den_auth=True checks tokens against a Den server, and this client has none "
            "configured; leave den_auth off (the cluster's own token is required)"
        )


def send_code(
    code: Any,
    system: Cluster | str,
    env: Env | str | list[str] | None,
    fallback_env: Env | None,
    key: str,
) -> tuple[Cluster, Env | None, str]:
    """Put a function or class on ``system`` under ``key`` (its last path segment)."""
    cluster = as_cluster(system)
    target_env = as_env(env) if env is not None else fallback_env
    key = key.rsplit("/", 1)[-1]
    cluster.put_resource(key, code, env=target_env)
    return cluster, target_env, key


def as_cluster(system: Cluster | str | dict[str, Any]) -> Cluster:
    """A ``Cluster`` from a cluster, a name (``"local"`` or a saved one) or a config."""
    if isinstance(system, Cluster):
        return system
    if isinstance(system, str):
        return cluster(name=system)
    if isinstance(system, dict):
        built = Resource.deref(system)
        if isinstance(built, Cluster):
            return built
    raise TypeError(f"expected a cluster or a cluster's name, got {system!r}")


def _env_name(env: Env | str | None) -> str:
    if env is None:
        return BASE_ENV
    if isinstance(env, str):
        return env
    return env.name or f"env-{env.content_hash()[:12]}"


def cluster(
    name: str | None = None,
    server_port: int | None = None,
    host: str | list[str] | None = None,
    ssh_creds: dict[str, str] | None = None,
    ssh_port: int | None = None,
    server_connection_type: str | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    den_auth: bool = False,
    insecure: bool = False,
) -> Cluster:
    """A cluster: the local daemon (``name='local'``), an SSH host (``host=``), or the saved
    one named ``name``. ``server_connection_type``: ``ssh`` (a tunnel; the default with a
    host), ``tls`` (HTTPS, the certificate pinned) or ``none`` (HTTP); a token is required
    unless ``insecure=True``."""
    settings: dict[str, Any] = {
        "server_connection_type": server_connection_type,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        "den_auth": den_auth,
        "insecure": insecure,
    }
    customized = host is not None or server_port is not None or any(settings.values())
    if name is not None and not customized:
        try:
            return Cluster.from_name(name)
        except ResourceNotFoundError:
            if name.rsplit("/", 1)[-1] != "local":
                raise
    port = local_daemon.DEFAULT_PORT if server_port is None else server_port
    return Cluster(name, port, host, ssh_creds, ssh_port, **settings)


def here() -> Cluster:
    """The cluster this code runs on: the local daemon's cluster."""
    return Cluster(name="local")
