"""A cluster on an SSH host: bootstrapped from this checkout, reached through a tunnel."""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh


def whoami(x: int) -> tuple[str, int]:
    print("running remotely")
    return getpass.getuser(), x * 2


class Tally:
    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> int:
        self.total += n
        return self.total


def test_a_fresh_host_is_bootstrapped_and_called_through_a_tunnel(ssh_hosts: list[Any]) -> None:
    host = ssh_hosts[1]
    creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
    c = rh.cluster(
        name="remote", host="127.0.0.1", ssh_creds=creds, ssh_port=host.port, server_port=0
    )
    try:
        fn = rh.function(whoami).to(c)  # installs runhouse there and starts the daemon
        assert fn(21) == (host.user, 42)  # it ran as the host's user
        tally = rh.module(Tally).to(c)(name="tally")
        tally.add(2)
        assert tally.add(3) == 5
        status = c.status()
        assert status["daemon"]["runhouse"] == rh.__version__
        assert set(c.keys()) >= {"whoami", "tally"}

        saved = c.save().config()
        assert saved["host"] == "127.0.0.1" and saved["ssh_creds"] == creds

        # The tunnel dies (its forward is cancelled): the next call opens it again.
        runner = c.daemon_host.runner
        endpoint = c._connected(autostart=False)
        cancel = ["ssh", *runner.options(), "-O", "cancel"]  # type: ignore[attr-defined]
        cancel += ["-L", f"127.0.0.1:{endpoint.port}:127.0.0.1:{status['daemon']['port']}"]
        subprocess.run([*cancel, runner.target], check=True, capture_output=True)  # type: ignore[attr-defined]
        assert fn(1) == (host.user, 2)
    finally:
        c.daemon_host.stop()


def test_a_crashed_remote_daemon_is_restarted(ssh_hosts: list[Any], caplog: Any) -> None:
    import logging

    host = ssh_hosts[1]  # the first host serves the session's `ssh_cluster`
    creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
    c = rh.cluster(host="127.0.0.1", ssh_creds=creds, ssh_port=host.port, server_port=0)
    try:
        assert rh.function(whoami).to(c)(1) == (host.user, 2)
        pid = c.status()["daemon"]["pid"]
        [(rc, _, _)] = c.run(f"kill -9 {pid}", stream_logs=False)
        assert rc == 0
        with caplog.at_level(logging.WARNING, logger="runhouse"):
            fn = rh.function(whoami).to(c)  # the next use finds it gone and starts it again
        assert "is gone" in caplog.text and "restarting it" in caplog.text
        assert fn(2) == (host.user, 4)
        assert c.status()["daemon"]["pid"] != pid
        c.restart_server()
        assert rh.function(whoami).to(c)(3) == (host.user, 6)
    finally:
        c.daemon_host.stop()


def test_cli_status_restart_and_ssh_on_a_saved_cluster(ssh_hosts: list[Any], python: str) -> None:
    import json as jsonlib

    host = ssh_hosts[1]
    creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
    c = rh.cluster(name="box", host="127.0.0.1", ssh_creds=creds, ssh_port=host.port, server_port=0)
    c.save()
    try:
        c.up_if_not()
        cli = [python, "-m", "runhouse"]
        status = subprocess.run([*cli, "status", "box", "--json"], capture_output=True, text=True)
        assert status.returncode == 0, status.stderr
        first_pid = jsonlib.loads(status.stdout)["daemon"]["pid"]
        assert subprocess.run([*cli, "restart", "box"], capture_output=True).returncode == 0
        status = subprocess.run([*cli, "status", "box", "--json"], capture_output=True, text=True)
        assert jsonlib.loads(status.stdout)["daemon"]["pid"] != first_pid
        whoami = subprocess.run([*cli, "ssh", "box", "whoami"], capture_output=True, text=True)
        assert whoami.stdout.strip() == host.user
    finally:
        c.daemon_host.stop()


def test_ssh_tunnel_and_ssh(ssh_cluster: Any) -> None:
    import urllib.request

    port = ssh_cluster.ssh_tunnel()  # a free local port to the daemon
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_rh/health", timeout=10) as answer:
        assert answer.status == 200
    daemon_port = ssh_cluster.status()["daemon"]["port"]
    from runhouse.client.hosts import free_port

    chosen = free_port()
    assert ssh_cluster.ssh_tunnel(chosen, daemon_port) == chosen
    with urllib.request.urlopen(f"http://127.0.0.1:{chosen}/_rh/health", timeout=10) as answer:
        assert answer.status == 200
    assert ssh_cluster.ssh("exit 3") == 3
    with pytest.raises(ValueError, match="this machine"):
        rh.cluster(name="local").ssh_tunnel()


def test_a_host_without_python_says_so(ssh_hosts: list[Any], tmp_path: Path) -> None:
    from tests import sshd

    bare = sshd.HOMES / "bare-bin"  # a PATH with a shell but no python3
    bare.mkdir(exist_ok=True)
    if not (bare / "bash").exists():
        (bare / "bash").symlink_to("/bin/bash")
    bare.chmod(0o755)
    root = ssh_hosts[0].key.parent
    host = sshd.start_host(
        root, "nopython", "rhtest3", ssh_hosts[0].key, extra=f"SetEnv PATH={bare}\n"
    )
    try:
        creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
        c = rh.cluster(host="127.0.0.1", ssh_creds=creds, ssh_port=host.port, server_port=0)
        with pytest.raises(rh.DaemonError, match="has no python3 on its PATH; install Python"):
            c.up_if_not()
    finally:
        c.daemon_host.runner.close()  # type: ignore[attr-defined]
        host.stop()


def test_commands_and_rsync_reach_each_node_of_a_multi_host_cluster(
    ssh_hosts: list[Any], tmp_path: Path
) -> None:
    from tests import sshd

    first = ssh_hosts[0]
    node = sshd.start_node(first.key.parent, first, "node2", "127.0.0.2")
    creds = {"ssh_user": first.user, "ssh_private_key": str(first.key)}
    c = rh.cluster(
        host=["127.0.0.1", "127.0.0.2"], ssh_creds=creds, ssh_port=first.port, server_port=0
    )
    where = "echo $SSH_CONNECTION | cut -d' ' -f3"  # the address the sshd was reached at
    try:
        assert c.ips == ["127.0.0.1", "127.0.0.2"]
        assert [out.strip() for _, out, _ in c.run(where, stream_logs=False)] == ["127.0.0.1"]
        [(rc, out, _)] = c.run(where, stream_logs=False, node="127.0.0.2")
        assert (rc, out.strip()) == (0, "127.0.0.2")
        everywhere = c.run([where, "exit 4"], stream_logs=False, node="all")
        assert {
            ip: [(rc, out.strip()) for rc, out, _ in results] for ip, results in everywhere.items()
        } == {
            "127.0.0.1": [(0, "127.0.0.1"), (4, "")],
            "127.0.0.2": [(0, "127.0.0.2"), (4, "")],
        }

        source = tmp_path / "payload"
        source.mkdir()
        (source / "a.txt").write_text("to the second node")
        c.rsync(str(source), "multi-payload", node="127.0.0.2")
        [(rc, out, _)] = c.run("cat multi-payload/a.txt", stream_logs=False, node="127.0.0.2")
        assert (rc, out) == (0, "to the second node")

        with pytest.raises(ValueError, match="not a host of"):
            c.run("true", node="10.1.2.3")
        with pytest.raises(ValueError, match="pick a node"):
            c.rsync("multi-payload", str(tmp_path / "back"), up=False, node="all")
        with pytest.raises(ValueError, match="head node"):
            c.run("true", env="base", node="all")
    finally:
        node.stop()
