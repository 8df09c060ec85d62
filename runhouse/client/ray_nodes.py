"""The other hosts of a Ray cluster: given the head's Ray, joined to it over SSH, and stopped
by the PIDs recorded on them (never by name).

    prepare(head, nodes)           # runhouse[ray] on every host, one Ray version everywhere
    join(nodes, daemon_info, status)   # each host runs a Ray node; waits until the head sees it
    leave(nodes)                   # SIGTERM to each node's recorded PID

On a node host, ``~/.rh/nodes/<host>.json`` records the node's pid, the Ray address it joined
and the daemon it joined for, and ``<host>.log`` keeps its output. ``<host>`` is the
cluster's name for the host, so hosts that share a home (NFS, or several addresses of one
machine) keep theirs apart.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runhouse.client import bootstrap
from runhouse.client.runners.ssh import SSHRunner
from runhouse.exceptions import DaemonError, NodeJoinError, RayVersionMismatchError, RunhouseError

log = logging.getLogger("runhouse")

JOIN_TIMEOUT = 120.0  # seconds for every node to show up (a Ray node takes 10-15 s)
_POLL = 0.5  # seconds between looks at the head's node list
_CHECK_EVERY = 3.0  # seconds between looks at the joining processes themselves

# Run on a node host with the venv's Python: `join NAME ADDRESS GIVEN HEAD`, `alive NAME`,
# `leave NAME`; prints one JSON line.
_NODE_SCRIPT = r"""
import json, os, signal, socket, subprocess, sys, time

mode, name = sys.argv[1], sys.argv[2]
folder = os.path.expanduser("~/.rh/nodes")
record, log = os.path.join(folder, name + ".json"), os.path.join(folder, name + ".log")


def alive(pid):
    # A node whose parent never reaps it (an init that is not one) stays a zombie: gone.
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"ray.scripts.scripts" not in f.read():
                return False  # the pid now belongs to another program
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(pid):
    # `ray start --block` stops its node's Ray processes on SIGTERM, then exits.
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)  # its own session and group: it and its children
        except ProcessLookupError:
            pass


try:
    with open(record) as f:
        old = json.load(f)
except (OSError, ValueError):
    old = None
running = old is not None and alive(old["pid"])
if mode == "alive":
    print(json.dumps({"alive": running}))
elif mode == "leave":
    if running:
        stop(old["pid"])
    if old is not None and os.path.exists(record):
        os.remove(record)
    print(json.dumps({"stopped": running}))
else:
    address, given, head = sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
    if running and old["ray_address"] == address and old["head"] == head:
        print(json.dumps({**old, "already": True}))
        sys.exit(0)
    if running:
        stop(old["pid"])  # the node of an earlier head: that Ray cluster is gone
    host, port = address.rsplit(":", 1)
    host = socket.gethostbyname(host)
    # The address this host reaches the head from is one the head reaches it at; on the
    # head's own machine that is the head's address, so the cluster's name for it is used.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, int(port)))
        ip = probe.getsockname()[0]
    if ip == host:
        ip = socket.gethostbyname(given)
    temp = os.path.expanduser("~/.rh/ray")
    if len(temp) > 40:  # Ray's socket paths under it must stay within 107 bytes
        temp = f"/tmp/rh-ray-{os.getuid()}"
    os.makedirs(temp, exist_ok=True)
    os.makedirs(folder, exist_ok=True)
    # Ray's agent listens on a fixed port by default, which another Ray on this host (of
    # another user, even) may hold: a free one instead.
    with socket.socket() as free:
        free.bind(("", 0))
        agent_port = str(free.getsockname()[1])
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--address", address,
        "--node-ip-address", ip, "--temp-dir", temp, "--disable-usage-stats", "--block",
        "--dashboard-agent-listen-port", agent_port,
    ]
    environ = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    with open(log, "ab") as out:
        node = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=environ, cwd=os.path.expanduser("~"),
        )
    new = {"pid": node.pid, "ray_address": address, "head": head, "node_ip": ip, "log": log}
    with open(record + ".tmp", "w") as f:
        json.dump(new, f)
    os.replace(record + ".tmp", record)
    print(json.dumps(new))
"""


def prepare(head: SSHRunner, nodes: dict[str, SSHRunner]) -> dict[str, str | None]:
    """Install this Runhouse with Ray on the head, then on the other hosts with the head's
    Ray; returns each host's Ray version, or raises ``RayVersionMismatchError``."""
    versions = {head.host: bootstrap.install(head, ray=True)}
    pin = versions[head.host]
    if nodes:
        with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as pool:
            found = pool.map(
                lambda r: bootstrap.install(r, ray=True, ray_version=pin), nodes.values()
            )
            versions.update(zip(nodes, found, strict=True))
    check_versions(versions, head.host)
    return versions


def check_versions(versions: dict[str, str | None], head: str) -> None:
    """Raise ``RayVersionMismatchError`` unless every host runs the head's Ray version."""
    if len(set(versions.values())) > 1 or versions[head] is None:
        raise RayVersionMismatchError(versions, head)


def join(
    nodes: dict[str, SSHRunner],
    info: dict[str, Any],
    status: Callable[[], dict[str, Any]],
    timeout: float = JOIN_TIMEOUT,
) -> None:
    """Start a Ray node on each host, joined to the Ray head of the daemon described by
    ``info`` (a node already joined to it is left as it is), and wait until ``status()``
    (the daemon's) lists each node alive; ``NodeJoinError`` names a host that did not."""
    address = info.get("ray_address") or status()["daemon"].get("ray_address")
    if not address:
        raise DaemonError(
            "The daemon runs the Ray engine but did not say its Ray address (ray_address in "
            "its info): it is older than this client. Restart it (c.restart_server())."
        )
    head = json.dumps([info.get("pid"), info.get("started")])
    joining = {
        host: _node(runner, "join", host, address, host, head) for host, runner in nodes.items()
    }
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + _CHECK_EVERY
    while True:
        seen = {n.get("address") for n in status().get("nodes") or [] if n.get("alive")}
        waiting = [host for host, node in joining.items() if node["node_ip"] not in seen]
        if not waiting:
            return
        now = time.monotonic()
        if now >= next_check or now >= deadline:
            for host in waiting:
                if not _node(nodes[host], "alive", host)["alive"]:
                    raise NodeJoinError(host, "its Ray node exited", _log_tail(nodes[host], host))
                if now >= deadline:
                    why = (
                        f"its Ray node ({joining[host]['node_ip']}) did not show up in the "
                        f"head's node list within {timeout:.0f}s"
                    )
                    raise NodeJoinError(host, why, _log_tail(nodes[host], host))
            next_check = now + _CHECK_EVERY
        time.sleep(_POLL)


def leave(nodes: dict[str, SSHRunner]) -> list[str]:
    """Stop the Ray node each host runs for this cluster (SIGTERM to its recorded PID);
    returns the hosts where one was running. A host that cannot be reached is logged and
    skipped: the rest of the cluster still stops."""
    if not nodes:
        return []

    def stop(host: str, runner: SSHRunner) -> bool:
        try:
            return bool(_node(runner, "leave", host).get("stopped"))
        except RunhouseError as exc:
            log.warning("Could not stop the Ray node on %s: %s", host, exc)
            return False

    with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as pool:
        stopped = list(pool.map(stop, nodes, nodes.values()))
    return [host for host, done in zip(nodes, stopped, strict=True) if done]


def _node(runner: SSHRunner, mode: str, name: str, *args: str) -> dict[str, Any]:
    """Run the node script on ``runner``'s host; its JSON answer."""
    argv = " ".join(shlex.quote(a) for a in (mode, _file_name(name), *args))
    # Joining runs Ray from the venv; the rest needs only a Python (a host that never ran
    # a node may have no venv).
    python = bootstrap.VENV_PYTHON if mode == "join" else "python3"
    command = f"{python} -c {shlex.quote(_NODE_SCRIPT)} {argv}"
    [(rc, out, err)] = runner.run(command, stream_logs=False)
    lines = out.strip().splitlines()
    if rc != 0 or not lines:
        raise DaemonError(f"Managing the Ray node on {runner.target} failed ({mode}):\n{err}")
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def _log_tail(runner: SSHRunner, name: str, lines: int = 30) -> str:
    """The last lines of the host's Ray node log."""
    log = f"~/.rh/nodes/{shlex.quote(_file_name(name))}.log"
    [(_, out, err)] = runner.run(f"tail -n {lines} {log}", stream_logs=False)
    return (out or err).rstrip()


def _file_name(host: str) -> str:
    """``host`` as a file name (an address or a name from ~/.ssh/config)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in host)
