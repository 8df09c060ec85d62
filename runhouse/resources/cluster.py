"""``Cluster``: compute with a Runhouse daemon; here, the daemon on this machine.

>>> c = rh.cluster(name="local")          # the daemon starts on first use if needed
>>> c.put("answer", 42); c.get("answer")
42
>>> c.keys(), c.status()["envs"][0]["worker"]["pid"]
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any, Literal, overload

from runhouse.client import cluster_engines, den_auth, local_daemon
from runhouse.client.connection import DaemonConnection
from runhouse.client.hosts import DaemonHost, LocalHost, SSHHost, free_port
from runhouse.client.runners.base import CommandRunner
from runhouse.client.runners.ssh import SSHRunner, parse_creds
from runhouse.exceptions import DaemonError, EnvInstallError, ResourceNotFoundError
from runhouse.resources.cluster_calls import BASE_ENV, ClusterCalls
from runhouse.resources.env import Env, as_env
from runhouse.resources.package import Package
from runhouse.resources.resource import Resource, build
from runhouse.wire import home
from runhouse.wire.exposure import Exposure

log = logging.getLogger("runhouse")
# Saved in a config: a key's path (never its contents); a password never is (memory only).
SSH_CRED_FIELDS = ("ssh_user", "ssh_private_key", "ssh_proxy_command")


class Cluster(ClusterCalls, Resource):
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
        engine: str | None = None,
        ray_address: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.server_port = server_port
        self.host = host
        self.ssh_creds, self._ssh_password = parse_creds(ssh_creds, SSH_CRED_FIELDS)
        self.ssh_port = ssh_port
        self.server_connection_type = server_connection_type or ("ssh" if host else "none")
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.den_auth = den_auth
        self.insecure = insecure
        self._engine = engine  # None: its kind's default (see runhouse/client/cluster_engines)
        self.ray_address = ray_address
        _check_connection_settings(self)
        self._daemon_host: DaemonHost | None = None
        self._connection = DaemonConnection(self)

    def config(self) -> dict[str, Any]:
        """The cluster's config (a key's path is kept, never a secret's value)."""
        return {
            **super().config(),
            "host": self.host,
            "server_port": self.server_port,
            "ssh_creds": {k: v for k, v in self.ssh_creds.items() if k in SSH_CRED_FIELDS},
            "ssh_port": self.ssh_port,
            "server_connection_type": self.server_connection_type,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "den_auth": self.den_auth,
            "insecure": self.insecure,
            "engine": self._engine,
            "ray_address": self.ray_address,
        }

    @property
    def engine(self) -> str:
        """The engine its daemon runs workers with: ``"process"`` (child processes of the
        daemon) or ``"ray"`` (Ray actors over the hosts' Ray nodes)."""
        return cluster_engines.choose(self._engine, self.ray_address, len(self.ips)).engine

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
            **den_auth.exposure_fields(self.den_auth, self._address),
        )

    @property
    def daemon_host(self) -> DaemonHost:
        """Where the daemon runs: this machine, or the (first) host over SSH."""
        if self._daemon_host is None:
            engine = cluster_engines.asked(self._engine, self.ray_address, len(self.ips))
            if not self.host:
                self._daemon_host = LocalHost(engine=engine)
            else:
                runner = self._ssh_runner(self.ips[0])
                nodes = {ip: self._ssh_runner(ip) for ip in self.ips[1:]}
                tunnel = self.server_connection_type == "ssh"
                self._daemon_host = SSHHost(runner, tunnel, engine, nodes)
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
            password=self._ssh_password,
            proxy_command=self.ssh_creds.get("ssh_proxy_command"),
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
        # A cluster travels (inside a function sent elsewhere) without its live connections,
        # but with the id of the daemon it reached (see runhouse/wire/home.py).
        state = self.__dict__.copy()
        state["_daemon_host"] = None
        state["_instance"] = self._connection.instance() or self.__dict__.get("_instance")
        del state["_connection"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._connection = DaemonConnection(self)
        if home.is_home(state.get("_instance")):  # in a worker of this cluster's own daemon
            self._daemon_host = LocalHost(Path(home.daemon_dir() or "."))

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

    def is_connected(self) -> bool:
        """Whether this client reaches the cluster's daemon now (nothing is started)."""
        return self.is_up()

    def disconnect(self) -> None:
        """Close this client's connections to the daemon (and its SSH tunnel); the daemon
        keeps running, and the next use reconnects."""
        self._connection.drop()
        if isinstance(self._daemon_host, SSHHost):
            self._daemon_host.close()

    def restart_server(self) -> Cluster:
        """Stop the daemon (and its workers) and start it again; objects are lost."""
        self._connection.restart()
        return self

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        """Envs, workers (pid, memory; a worker that does not answer says so), objects per
        env, uptime and versions; ``timeout``: seconds to wait for the daemon's answer."""
        return self._with_client(lambda c: c.json("GET", "/_rh/status", timeout=timeout))

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
        variables, path = self._env_for_commands(env) if env is not None else ({}, None)
        results = {
            ip: runner.run(commands, env=variables or None, stream_logs=stream_logs, path=path)
            for ip, runner in runners.items()
        }
        return results if node == "all" else next(iter(results.values()))

    def _env_for_commands(self, env: Env | str) -> tuple[dict[str, str], str]:
        """The variables and the ``bin`` folder commands run with in ``env``: its own venv
        (made now if it had none), so ``pip install`` there changes that env alone."""
        name = self.ensure_env(env)
        info = self._with_client(lambda c: c.env_info(name)) or {}
        if name != BASE_ENV and not info.get("venv"):
            made = self._with_client(lambda c: c.json("POST", f"/_rh/venvs/{name}"))
            info = {**info, "python": made["python"]}
        bin_dir = os.path.dirname(info["python"])
        variables = dict(info.get("env_vars") or {})
        if name != BASE_ENV:
            variables["VIRTUAL_ENV"] = os.path.dirname(bin_dir)
        return variables, bin_dir

    def run_python(
        self,
        lines: str | list[str],
        env: Env | str | None = None,
        stream_logs: bool = True,
    ) -> list[tuple[int, str, str]]:
        """Run Python code on the head, with ``env``'s Python (default: the host's
        ``python3``); returns ``[(returncode, stdout, stderr)]``, as ``run`` does."""
        if env is None:
            return [self.runner.run_python(lines, stream_logs=stream_logs)]
        code = lines if isinstance(lines, str) else "\n".join(lines)
        return self.run([f"python -c {shlex.quote(code)}"], env=env, stream_logs=stream_logs)

    def install_packages(
        self, reqs: list[str | Package] | str | Package, env: Env | str | None = None
    ) -> None:
        """Install packages into ``env`` on the cluster (default: the base env, which is the
        daemon's own Python); ``rh.EnvInstallError`` if the install fails. Prefer an env's
        ``reqs``: an env built from them is rebuilt the same way anywhere."""
        wanted = Env(reqs=reqs).resolved_reqs()
        placed = self.daemon_host.place_requirements(wanted)
        args: list[str] = []
        for req in placed:
            args += ["-r", req["value"]] if req["kind"] == "requirements" else [req["value"]]
        env_name = self.ensure_env(env)
        if env_name == BASE_ENV:  # uv comes with runhouse, so the daemon's Python has it
            # UV_NATIVE_TLS: the host's CA store, as its pip and curl use (a proxy's CA too).
            command = 'UV_NATIVE_TLS=1 python -m uv pip install -q --python "$(command -v python)" '
        else:  # an env's own venv, which has pip
            command = "pip install -q "
        command += shlex.join(args)
        [(code, out, err)] = self.run([command], env=env_name, stream_logs=False)
        if code != 0:
            raise EnvInstallError(env_name, command, code, (out + err).strip())

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
        if runner.uses_password:
            runner.login()  # the shell then rides the logged-in connection: no prompt
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
    if c.den_auth and (problem := den_auth.problem(c.insecure)):
        raise ValueError(problem)
    if problem := cluster_engines.problem(c._engine, c.ray_address):
        raise ValueError(problem)


def send_code(
    code: Any,
    system: Cluster | str,
    env: Env | str | list[str] | None,
    fallback_env: Env | None,
    key: str,
    named: bool = True,
) -> tuple[Cluster, Env | None, str]:
    """Put a function or class on ``system`` under ``key`` (its last path segment); returns
    the key it got. Code not ``named`` by the user keeps to its env: if another env holds
    ``key``, it is held as ``key@env`` (a handle always calls what it sent)."""
    cluster = as_cluster(system)
    target_env = as_env(env) if env is not None else fallback_env
    key = key.rsplit("/", 1)[-1]
    key = cluster.put_resource(key, code, env=target_env, unique=not named)
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
    engine: str | None = None,
    ray_address: str | None = None,
) -> Cluster:
    """A cluster: the local daemon (``name='local'``), an SSH host (``host=``), several
    hosts (``host=[head, ...]``), or the saved one named ``name``. ``server_connection_type``:
    ``ssh`` (a tunnel; the default with a host), ``tls`` (HTTPS, the certificate pinned) or
    ``none`` (HTTP); a token is required unless ``insecure=True``. ``engine``: ``"process"``
    (the default on one host) or ``"ray"`` (the default on several: the other hosts join the
    head's Ray); ``ray_address="host:port"`` attaches to a Ray cluster that already runs."""
    settings: dict[str, Any] = {
        "server_connection_type": server_connection_type,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        "den_auth": den_auth,
        "insecure": insecure,
        "engine": engine,
        "ray_address": ray_address,
    }
    customized = host is not None or server_port is not None or any(settings.values())
    if name is not None and not customized:
        try:
            saved = Cluster.from_name(name)
        except ResourceNotFoundError:
            if name.rsplit("/", 1)[-1] != "local":
                raise
        else:
            if ssh_creds:  # a password is never saved: it is given again when loading
                config = {**saved.config(), "ssh_creds": {**saved.ssh_creds, **ssh_creds}}
                return build(config, saved._address)  # type: ignore[return-value]
            return saved
    port = local_daemon.DEFAULT_PORT if server_port is None else server_port
    return Cluster(name, port, host, ssh_creds, ssh_port, **settings)


def here() -> Cluster:
    """The cluster this code runs on: the local daemon's cluster."""
    return Cluster(name="local")
