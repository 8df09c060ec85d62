"""Where a cluster's daemon runs, and how to reach it: this machine, or a host over SSH.

A ``DaemonHost`` finds, starts and stops the daemon, reads its token, gives the address the
client connects to (an SSH tunnel for remote hosts) and mirrors the working dir there.
``Cluster`` talks to one of these and does not care which.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import tempfile
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Any

from runhouse.client import bootstrap, cluster_engines, local_daemon, ray_nodes, workdir
from runhouse.client.bootstrap import REMOTE_ROOT
from runhouse.client.bootstrap import build_wheel as build_wheel  # its home before bootstrap.py
from runhouse.client.http import ClusterClient
from runhouse.client.runners.base import CommandRunner
from runhouse.client.runners.local import LocalRunner
from runhouse.client.runners.ssh import SSHRunner
from runhouse.exceptions import DaemonError
from runhouse.wire.engine import EngineChoice
from runhouse.wire.exposure import Exposure

PROCESSES = EngineChoice()
# Seconds a daemon has to listen once started: after its engine, and a Ray head takes a while.
_START_TIMEOUT = {"process": 60, "ray": 180}


class DaemonHost(ABC):
    """The machine a cluster's daemon runs on."""

    runner: CommandRunner
    # The engine the cluster asks its daemon for; None: a daemon started here runs the
    # process engine, and one already running serves whatever its engine.
    engine: EngineChoice | None = None

    @abstractmethod
    def info(self) -> dict[str, Any] | None:
        """The running daemon's info (pid, port), or None."""

    @abstractmethod
    def start(self, port: int, how: Exposure) -> dict[str, Any]:
        """Start the daemon (installing Runhouse first where needed); returns its info."""

    @abstractmethod
    def stop(self) -> bool:
        """Stop the daemon and its workers; whether one was running."""

    @abstractmethod
    def token(self) -> str | None:
        """The daemon's bearer token."""

    @abstractmethod
    def endpoint(self, info: dict[str, Any]) -> tuple[str, int]:
        """The address this client connects to for the daemon described by ``info``
        (``EngineMismatchError`` if that daemon runs another engine than asked for)."""

    @abstractmethod
    def certificate(self, info: dict[str, Any]) -> str | None:
        """The TLS certificate (PEM) the daemon serves, to pin; None for plain HTTP."""

    @abstractmethod
    def sync_workdir(self, root: Path) -> str:
        """Mirror the working dir where the workers import it from; returns that path."""

    def place_requirements(self, reqs: list[dict[str, str]]) -> list[dict[str, str]]:
        """Env requirements as the daemon must see them (local paths copied there first)."""
        return reqs


class LocalHost(DaemonHost):
    """The daemon on this machine, in ``root`` (default: the ``daemon_dir`` folder)."""

    def __init__(self, root: Path | None = None, engine: EngineChoice | None = None) -> None:
        self.runner = LocalRunner()
        self.root = root
        self.engine = engine

    @property
    def files(self) -> local_daemon.DaemonFiles:
        """The local daemon's files."""
        return local_daemon.files_for(self.root)

    def info(self) -> dict[str, Any] | None:
        """The local daemon's info, if it runs."""
        return local_daemon.running_info(self.files)

    def start(self, port: int, how: Exposure) -> dict[str, Any]:
        """Start the local daemon in the background."""
        engine = self.engine or PROCESSES
        timeout = _START_TIMEOUT[engine.engine]
        return local_daemon.start(self.files, port, how, timeout=timeout, engine=engine)

    def stop(self) -> bool:
        """Stop the local daemon."""
        return local_daemon.stop(self.files)

    def token(self) -> str | None:
        """The local daemon's token."""
        return self.files.read_token()

    def endpoint(self, info: dict[str, Any]) -> tuple[str, int]:
        """The daemon's own address (loopback when it listens on all interfaces)."""
        cluster_engines.check_running("this machine", self.engine, info)
        host = info.get("host") or "127.0.0.1"
        return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), int(info["port"])

    def certificate(self, info: dict[str, Any]) -> str | None:
        """The local daemon's certificate, read from its file."""
        path = info.get("tls_cert")
        return Path(path).read_text() if path else None

    def sync_workdir(self, root: Path) -> str:
        """A mirror of ``root`` in the daemon's folder."""
        return str(workdir.sync(root, self.files.root / "workdirs" / workdir.mirror_name(root)))


class ReachedHost(DaemonHost):
    """Another cluster's daemon as a worker reaches it: known by its address, token and
    certificate only (nothing to start, stop or mirror from here)."""

    def __init__(
        self, address: str, info: dict[str, Any], token: str | None, cert: str | None
    ) -> None:
        self.address = address
        self._info = info
        self._token = token
        self._cert = cert

    def info(self) -> dict[str, Any] | None:
        """The daemon's info as the client that handed it over saw it."""
        return self._info

    def start(self, port: int, how: Exposure) -> dict[str, Any]:
        """Refused: only a client that has the cluster starts its daemon."""
        raise DaemonError(self._only_reached("started"))

    def stop(self) -> bool:
        """Refused: only a client that has the cluster stops its daemon."""
        raise DaemonError(self._only_reached("stopped"))

    def token(self) -> str | None:
        """The daemon's token, as handed over."""
        return self._token

    def endpoint(self, info: dict[str, Any]) -> tuple[str, int]:
        """The daemon's address and port."""
        return self.address, int(info["port"])

    def certificate(self, info: dict[str, Any]) -> str | None:
        """The daemon's certificate, as handed over (pinned)."""
        return self._cert

    def sync_workdir(self, root: Path) -> str:
        """Refused: a daemon reached by address has no working dir mirrored from here."""
        raise DaemonError(self._only_reached("sent a working dir"))

    def _only_reached(self, what: str) -> str:
        return (
            f"The daemon at {self.address}:{self._info.get('port')} is reached by address "
            f"only and cannot be {what} from here; do it from a client that has its cluster."
        )


class SSHHost(DaemonHost):
    """A daemon on a host reached over SSH, bootstrapped on first use, through a tunnel."""

    runner: SSHRunner

    def __init__(
        self,
        runner: SSHRunner,
        tunnel: bool = True,
        engine: EngineChoice | None = None,
        nodes: dict[str, SSHRunner] | None = None,
    ) -> None:
        self.runner = runner
        self.tunnel = tunnel  # False: the daemon is exposed, and reached at the host directly
        self.engine = engine
        self.nodes = nodes or {}  # the cluster's other hosts, which join the head's Ray
        self._home: str | None = None
        self._tunnels: dict[int, int] = {}  # remote port -> local port

    @property
    def home(self) -> str:
        """The remote user's home folder."""
        if self._home is None:
            [(_, out, _)] = self.runner.run("echo -n $HOME", stream_logs=False)
            self._home = out
        return self._home

    def info(self) -> dict[str, Any] | None:
        """The remote daemon's info, if its pid is alive there."""
        # Alive means a process that is not a zombie: a killed daemon whose parent does not
        # reap it (an init that is not one) still answers `kill -0`.
        check = (
            "import json, os, sys\n"
            "info = json.load(open(os.path.expanduser(sys.argv[1])))\n"
            "stat = open(f'/proc/{info[\"pid\"]}/stat').read()\n"
            "sys.exit(1 if stat.rsplit(')', 1)[1].split()[0] == 'Z' else 0)"
        )
        daemon_json = f"{REMOTE_ROOT}/daemon/daemon.json"
        script = f"python3 -c {shlex.quote(check)} {daemon_json} 2>/dev/null && cat {daemon_json}"
        [(rc, out, _)] = self.runner.run(script, stream_logs=False)
        if rc != 0:
            return None
        info = json.loads(out)
        return info if isinstance(info, dict) else None

    def start(self, port: int, how: Exposure) -> dict[str, Any]:
        """Install this Runhouse on the host if needed (and on the other hosts, with Ray, for
        the Ray engine), start its daemon, wait for it; the other hosts then join its Ray."""
        engine = self.engine or PROCESSES
        problem = how.problem() or engine.problem()
        if problem is not None:
            raise DaemonError(f"Not starting the daemon on {self.runner.target}: {problem}")
        joining = self.nodes if cluster_engines.joins_hosts(engine, len(self.nodes) + 1) else {}
        if engine.engine == "ray":
            ray_nodes.prepare(self.runner, joining)
        else:
            bootstrap.install(self.runner)
        if how.certfile and how.keyfile:  # local files: the daemon reads them on the host
            certfile = self._place(Path(how.certfile).expanduser().resolve())
            keyfile = self._place(Path(how.keyfile).expanduser().resolve())
            how = replace(how, certfile=certfile, keyfile=keyfile)
        flags = " ".join(shlex.quote(flag) for flag in [*how.argv(), *engine.argv()])
        daemon = REMOTE_ROOT + "/daemon"
        start = (
            f"mkdir -p {daemon} && rm -f {daemon}/daemon.json && cd ~ || exit 1\n"
            # Only the daemon goes to the background, with every stream redirected: anything
            # holding this session's output open would keep the ssh command from returning.
            f"setsid nohup {REMOTE_ROOT}/venv/bin/python -m runhouse.daemon {flags} --port {port} "
            f"--dir {daemon} >> {daemon}/daemon.log 2>&1 < /dev/null &\n"
            # The daemon writes daemon.json once it listens (after its engine started: a Ray
            # head takes seconds): wait for it on the host, and stop one that is not up in time.
            f"pid=$!; for i in $(seq {_START_TIMEOUT[engine.engine] * 10}); do "
            f"[ -s {daemon}/daemon.json ] && exit 0; kill -0 $pid 2>/dev/null || break; "
            f"sleep 0.1; done\n"
            f"kill $pid 2>/dev/null; tail -20 {daemon}/daemon.log; exit 1"
        )
        [(rc, out, err)] = self.runner.run(start, stream_logs=False)
        if rc != 0:
            raise DaemonError(f"The daemon on {self.runner.target} did not start:\n{out}{err}")
        info = self.info()
        if info is None:
            raise DaemonError(f"The daemon on {self.runner.target} started but is not running")
        if joining:
            self._join(joining, info)
        return info

    def _join(self, nodes: dict[str, SSHRunner], info: dict[str, Any]) -> None:
        """Join ``nodes`` to the new daemon's Ray head; if one fails, stop the cluster (a
        partial cluster would be reused as it is by the next client)."""
        address, port = self.endpoint(info)
        client = ClusterClient(address, port, self.token(), certificate=self.certificate(info))

        def status() -> dict[str, Any]:
            answer: dict[str, Any] = client.json("GET", "/_rh/status")
            return answer

        try:
            ray_nodes.join(nodes, info, status)
        except DaemonError:  # NodeJoinError, or the daemon stopped answering
            self.stop()
            raise
        finally:
            client.close()

    def stop(self) -> bool:
        """Stop the other hosts' Ray nodes (by their recorded PIDs), then the remote daemon
        (SIGTERM; it stops its workers)."""
        ray_nodes.leave(self.nodes)
        info = self.info()
        if info is None:
            return False
        pid = int(info["pid"])
        wait = (
            f"kill {pid}; for i in $(seq 150); do kill -0 {pid} 2>/dev/null || exit 0; "
            f"sleep 0.1; done; kill -9 {pid}"
        )
        self.runner.run(wait, stream_logs=False)
        self._tunnels.clear()
        return True

    def token(self) -> str | None:
        """The remote daemon's token, read over SSH."""
        [(rc, out, _)] = self.runner.run(f"cat {REMOTE_ROOT}/daemon/token", stream_logs=False)
        return out.strip() or None if rc == 0 else None

    def endpoint(self, info: dict[str, Any]) -> tuple[str, int]:
        """A local port forwarded to the daemon through the SSH control connection (or the
        host's own address, for an exposed daemon)."""
        cluster_engines.check_running(self.runner.target, self.engine, info)
        remote_port = int(info["port"])
        if not self.tunnel:
            return self.runner.host, remote_port
        local_port = self.forward(self._tunnels.get(remote_port) or free_port(), remote_port)
        self._tunnels[remote_port] = local_port
        return "127.0.0.1", local_port

    def forward(self, local_port: int, remote_port: int) -> int:
        """Forward ``127.0.0.1:local_port`` here to ``remote_port`` on the host's loopback,
        through the control connection (``ssh -O forward -L``); returns the local port."""
        forward = ["ssh", *self.runner.options(), "-O", "forward"]
        forward += ["-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}", self.runner.target]
        self.runner.run("true", stream_logs=False)  # make sure the control connection is up
        result = subprocess.run(forward, capture_output=True, text=True)
        if result.returncode != 0 and "already" not in result.stderr.lower():
            raise DaemonError(
                f"Cannot open a tunnel to {self.runner.target}: {result.stderr.strip()}"
            )
        return local_port

    def close(self) -> None:
        """Close the tunnels this host opened to its daemon (``ssh -O cancel``); the SSH
        connection itself is shared with other commands, and stays."""
        for remote_port, local_port in list(self._tunnels.items()):
            cancel = ["ssh", *self.runner.options(), "-O", "cancel"]
            cancel += ["-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}", self.runner.target]
            subprocess.run(cancel, capture_output=True)
            del self._tunnels[remote_port]

    def certificate(self, info: dict[str, Any]) -> str | None:
        """The remote daemon's certificate, read over SSH (so it can be pinned)."""
        path = info.get("tls_cert")
        if not path:
            return None
        [(rc, out, err)] = self.runner.run(f"cat {shlex.quote(path)}", stream_logs=False)
        if rc != 0:
            raise DaemonError(
                f"Cannot read the daemon's certificate on {self.runner.target}: {err}"
            )
        return out

    def sync_workdir(self, root: Path) -> str:
        """rsync ``root`` (honouring .gitignore) to a mirror on the host."""
        dest = f"{self.home}/.rh/daemon/workdirs/{workdir.mirror_name(root)}"
        self.runner.rsync(str(root), dest, up=True)  # makes the folders above dest
        return dest

    def place_requirements(self, reqs: list[dict[str, str]]) -> list[dict[str, str]]:
        """Copy local package folders, wheels, requirements files and code folders to the
        host (rsync: only changes travel, mtimes kept so the env's hash is stable there)."""
        placed = []
        for req in reqs:
            if req["kind"] == "requirements":
                placed.append({**req, "value": self._place_requirements_file(Path(req["value"]))})
            elif req["kind"] != "pip":
                placed.append({**req, "value": self._place(Path(req["value"]))})
            else:
                placed.append(req)
        return placed

    def _place(self, source: Path, stands_for: Path | None = None) -> str:
        """rsync a local file or folder to the host (in the folder named after
        ``stands_for``, default ``source``); its path there."""
        dest = f"{self.home}/.rh/daemon/reqs/{workdir.mirror_name(stands_for or source)}"
        if source.is_dir():  # rsync makes dest and the folders above it
            self.runner.rsync(str(source), dest, up=True)
            return dest
        self.runner.rsync(str(source), f"{dest}/{source.name}", up=True, gitignore=False)
        return f"{dest}/{source.name}"

    def _place_requirements_file(self, source: Path) -> str:
        """A requirements file, with the local paths it lists copied and rewritten."""
        lines = []
        for line in source.read_text().splitlines():
            text = line.strip()
            prefix = "-e " if text.startswith("-e ") else ""
            spec = text.removeprefix(prefix).strip()
            if spec.startswith((".", "/", "~")):
                local = Path(spec).expanduser()
                local = (local if local.is_absolute() else source.parent / local).resolve()
                if not local.exists():
                    raise FileNotFoundError(f"{source} lists {spec!r}: {local} does not exist")
                line = prefix + self._place(local)
            lines.append(line)
        with tempfile.TemporaryDirectory() as tmp:
            rewritten = Path(tmp, source.name)
            rewritten.write_text("\n".join(lines) + "\n")
            os.utime(rewritten, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns))
            return self._place(rewritten, stands_for=source)


def free_port() -> int:
    """A free TCP port on this machine's loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
