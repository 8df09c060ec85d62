"""A real Ray cluster of several nodes on this machine, and a daemon on the Ray engine.

``ray_nodes`` (session): a head (``{"head": 1}``) and two worker nodes (``{"w1": 1}`` on
127.0.0.2, ``{"w2": 1}`` on 127.0.0.3), one CPU each, started as child processes (``ray start
--block``) one after the other (nodes that join at the same moment can hang), shared by every
test, stopped by PID at the end, workers first. ``add_node`` starts a node of a test's own,
for fault tests that kill it (its whole process group, as a machine lost) while the shared
nodes stay up.

``ray_daemon_dir`` (session): a daemon on a free port with ``--engine ray --ray-address``
pointing at that cluster, in a folder of its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runhouse.daemon.engines.ray_head import descendants, start_command

READY = "Ray runtime started"  # printed by `ray start --block` once its node has joined
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
RAY_ENVIRON = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@dataclass
class RayNode:
    """One ``ray start --block`` child: its IP, its node id once it has joined, its log."""

    proc: subprocess.Popen[bytes]
    ip: str
    log: Path
    id: str = ""

    def wait_joined(self, timeout: float = START_TIMEOUT) -> None:
        """Block until the node has joined; its id is then known."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray node {self.ip} exited:\n{_tail(self.log)}")
            if READY in self.log.read_text(errors="replace"):
                self.id = _node_id(self.proc.pid)
                if self.id:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray node {self.ip} did not join:\n{_tail(self.log)}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the node (it stops its Ray processes); SIGKILL what is left past a bound."""
        if self.proc.poll() is None:
            family = descendants(self.proc.pid)
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def lose(self) -> None:
        """Kill the node at once, as a machine that goes away: SIGKILL to its process group
        (its Ray workers, in groups of their own, exit when their raylet is gone)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@dataclass
class RayCluster:
    """The session's Ray cluster: ``address`` ("ip:port" of its GCS) and its nodes."""

    address: str
    temp_dir: Path
    environ: dict[str, str]
    nodes: list[RayNode] = field(default_factory=list)
    _ips: Iterator[int] = field(default_factory=lambda: itertools.count(4))

    @property
    def head(self) -> RayNode:
        """The head node."""
        return self.nodes[0]

    def node(self, resource: str) -> RayNode:
        """The shared node that holds ``resource`` ("head", "w1", "w2")."""
        return self.nodes[{"head": 0, "w1": 1, "w2": 2}[resource]]

    def add_node(self, resources: dict[str, float]) -> RayNode:
        """Start a node of the caller's own (one CPU, ``resources``), joined when returned;
        stop it with ``stop()`` or ``lose()``."""
        ip = f"127.0.0.{next(self._ips)}"
        node = _start(
            ["--address", self.address, "--node-ip-address", ip, "--num-cpus", "1"],
            resources,
            self.temp_dir / f"node-{ip}.log",
            self.environ,
            ip,
        )
        node.wait_joined()
        return node


@pytest.fixture(scope="session")
def ray_nodes() -> Iterator[RayCluster]:
    """A head and two worker nodes on this machine (skipped when Ray is not installed)."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'runhouse[ray]')")
    # Short: Ray's Unix socket paths under it must stay under 108 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="rh-rayt-", dir="/tmp"))
    environ = {**os.environ, **RAY_ENVIRON, "RAY_TMPDIR": str(temp_dir)}
    head = _start(
        ["--head", "--port", "0", "--num-cpus", "1", "--include-dashboard=false"],
        {"head": 1},
        temp_dir / "head.log",
        environ,
        "",
        ["--temp-dir", str(temp_dir / "ray")],
    )
    cluster = RayCluster("", temp_dir, environ, [head])
    try:
        head.wait_joined()
        cluster.address = (temp_dir / "ray" / "ray_current_cluster").read_text().strip()
        head.ip = cluster.address.rsplit(":", 1)[0]
        for ip, name in (("127.0.0.2", "w1"), ("127.0.0.3", "w2")):
            args = ["--address", cluster.address, "--node-ip-address", ip, "--num-cpus", "1"]
            node = _start(args, {name: 1}, temp_dir / f"{name}.log", environ, ip)
            cluster.nodes.append(node)
            node.wait_joined()  # one at a time: nodes joining together can hang
        with pytest.MonkeyPatch.context() as patch:
            for name, value in RAY_ENVIRON.items():
                patch.setenv(name, value)  # for the daemons and drivers the tests start
            yield cluster
    finally:
        for node in reversed(cluster.nodes):  # workers first, the head last
            node.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_daemon_dir(
    ray_nodes: RayCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A daemon on the Ray engine, joined to ``ray_nodes``, on a free port."""
    from runhouse.client import local_daemon
    from runhouse.wire.engine import EngineChoice

    files = local_daemon.files_for(tmp_path_factory.mktemp("ray-daemon"))
    local_daemon.start(files, port=0, timeout=120, engine=EngineChoice("ray", ray_nodes.address))
    yield files.root
    local_daemon.stop(files)


def _start(
    args: list[str],
    resources: dict[str, float],
    log: Path,
    environ: dict[str, str],
    ip: str,
    extra: list[str] | None = None,
) -> RayNode:
    command = start_command(*args, "--resources", json.dumps(resources), *(extra or []))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,  # lose() kills its process group
        )
    return RayNode(proc, ip, log)


def _node_id(pid: int) -> str:
    # The node's raylet, among the `ray start` process's children, is given the node's id.
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if args and args[0].endswith("/raylet"):
            for arg in args:
                if arg.startswith("--node_id="):
                    return arg.split("=", 1)[1]
    return ""


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
