"""A cluster's engine: saved with it, defaulted by its kind, passed to the daemon it starts,
and checked against a daemon that already runs; Ray daemons leave no Ray process behind."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.client import cluster_engines, local_daemon
from runhouse.client.ray_nodes import check_versions
from runhouse.exceptions import EngineMismatchError, RayVersionMismatchError
from runhouse.resources.cluster import Cluster
from runhouse.wire.engine import EngineChoice


def square(x: int) -> int:
    return x * x


def host_address() -> str:
    import ray

    return str(ray.util.get_node_ip_address())


def test_engine_and_ray_address_are_saved_and_loaded() -> None:
    c = rh.cluster(name="lab", host=["10.0.0.4", "10.0.0.5"], engine="ray").save()
    loaded = rh.cluster(name="lab")
    assert (loaded.config()["engine"], loaded.config()["ray_address"]) == ("ray", None)
    assert loaded.engine == "ray"

    attached = rh.cluster(name="attached", host="10.0.0.4", ray_address="10.0.0.9:6379").save()
    again = rh.cluster(name="attached")
    assert again.config()["ray_address"] == "10.0.0.9:6379" and again.engine == "ray"
    assert again.config()["engine"] is None  # the default, not a choice: it stays a default
    assert c.config()["host"] == ["10.0.0.4", "10.0.0.5"] and attached.host == "10.0.0.4"


def test_a_config_from_before_engines_loads_with_the_defaults() -> None:
    old = rh.cluster(name="old", host=["10.0.0.4", "10.0.0.5"]).config()
    del old["engine"], old["ray_address"]
    loaded = Cluster.from_config(old)
    assert (loaded.engine, loaded.ray_address) == ("ray", None)
    one = rh.cluster(name="one", host="10.0.0.4").config()
    del one["engine"], one["ray_address"]
    assert Cluster.from_config(one).engine == "process"


def test_defaults_by_kind_of_cluster() -> None:
    assert rh.cluster(name="local").engine == "process"
    assert rh.cluster(host="10.0.0.4").engine == "process"
    assert rh.cluster(host=["10.0.0.4", "10.0.0.5"]).engine == "ray"
    assert rh.cluster(host="10.0.0.4", ray_address="10.0.0.9:6379").engine == "ray"
    assert rh.cluster(host=["10.0.0.4", "10.0.0.5"], engine="process").engine == "process"
    assert rh.cluster(engine="ray", server_port=0).engine == "ray"
    # What each asks of a daemon that already runs: one host that names nothing takes any.
    assert cluster_engines.asked(None, None, hosts=1) is None
    assert (
        cluster_engines.asked(None, None, hosts=2) == rh.cluster(host=["a", "b"]).daemon_host.engine
    )
    assert cluster_engines.asked("process", None, hosts=0) is not None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"engine": "process", "ray_address": "10.0.0.9:6379"}, 'needs engine="ray"'),
        ({"engine": "spark"}, "engine must be one of"),
        ({"ray_address": "10.0.0.9"}, "host:port"),
    ],
)
def test_bad_combinations_fail_when_the_cluster_is_made(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rh.cluster(host="10.0.0.4", **settings)


def test_a_daemon_running_another_engine_is_named_not_used(own_daemon_dir: Path) -> None:
    rh.cluster(name="local", server_port=0).up_if_not()  # the process engine, the default
    assert json.loads((own_daemon_dir / "daemon.json").read_text())["engine"] == "process"
    for asks in ({"engine": "ray"}, {"ray_address": "127.0.0.1:1"}):
        with pytest.raises(EngineMismatchError, match=r"restart_server\(\)") as info:
            rh.cluster(name="wants-ray", server_port=0, **asks).up_if_not()
        assert (info.value.asked, info.value.running) == ("ray", "process")
    # Asking for the engine it runs, or for none on this machine, uses it.
    assert rh.cluster(name="p", engine="process", server_port=0).status()["envs"]


def test_a_ray_version_mismatch_names_each_host_and_the_fix() -> None:
    # The check bootstrap runs once every host is installed (the SSH test runs it for real).
    check_versions({"10.0.0.4": "2.60.0", "10.0.0.5": "2.60.0"}, "10.0.0.4")
    with pytest.raises(RayVersionMismatchError) as info:
        check_versions({"10.0.0.4": "2.60.0", "10.0.0.5": "2.9.3", "10.0.0.6": None}, "10.0.0.4")
    message = str(info.value)
    assert "10.0.0.4 (head) 2.60.0" in message and "10.0.0.5 2.9.3" in message
    assert "10.0.0.6 no Ray" in message and "'ray[default]==2.60.0'" in message
    assert isinstance(info.value, rh.VersionMismatchError)


# -- real Ray ------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def session_of(sid: int) -> set[int]:
    """The live processes of session ``sid`` (the daemon's: it starts its own session)."""
    found = set()
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields and fields[0] != "Z" and int(fields[3]) == sid:
            found.add(int(entry))
    return found


def still_running(pids: set[int]) -> set[int]:
    """Those of ``pids`` that are still running (not gone, not a zombie)."""
    return {pid for pid in pids if (fields := _stat(pid)) is not None and fields[0] != "Z"}


@pytest.fixture
def ray_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ray's settings for the daemons a test starts (they inherit this environment)."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray"))


@pytest.mark.usefixtures("ray_env")
def test_restart_server_brings_up_the_asked_engine_and_stopping_leaves_no_ray(
    own_daemon_dir: Path,
) -> None:
    here = rh.cluster(name="local", server_port=0).up_if_not()
    first = here.daemon_host.info()
    assert first is not None and first["engine"] == "process"
    c = rh.cluster(name="ray-here", engine="ray", server_port=0)
    with pytest.raises(EngineMismatchError):
        c.up_if_not()

    c.restart_server()  # stops the process daemon, starts one with the Ray engine
    info = c.daemon_host.info()
    assert info is not None and info["engine"] == "ray" and info["pid"] != first["pid"]
    assert ":" in info["ray_address"]
    assert rh.function(square).to(c)(7) == 49

    status = c.status()
    assert status["daemon"]["engine"] == "ray"
    assert status["daemon"]["ray_address"] == info["ray_address"]
    [node] = status["nodes"]
    assert node["head"] and node["alive"] and node["resources"]["CPU"] >= 1
    assert node["address"] == info["ray_address"].rsplit(":", 1)[0]
    base = next(e for e in status["envs"] if e["name"] == "base")
    assert base["workers"][0]["node"] == node["id"]
    assert "base/0" in node["workers"]
    # A cluster that names no engine takes the Ray daemon as it is (rh.here in its workers).
    assert rh.cluster(name="local").status()["daemon"]["pid"] == info["pid"]

    ray_processes = session_of(info["pid"]) - {info["pid"]}
    assert len(ray_processes) >= 3  # the head's raylet, GCS, and the worker's actor at least
    assert c.daemon_host.stop()
    assert not still_running(ray_processes | {info["pid"]})


def test_a_cluster_attached_to_a_running_ray_cluster_uses_its_nodes(
    own_daemon_dir: Path, ray_nodes: Any
) -> None:
    c = rh.cluster(name="attached", ray_address=ray_nodes.address, server_port=0)
    assert c.engine == "ray"
    c.up_if_not()
    info = c.daemon_host.info()
    assert info is not None and info["engine"] == "ray"
    assert info["ray_address"] == ray_nodes.address
    status = c.status()
    assert {n["id"] for n in status["nodes"] if n["alive"]} >= {n.id for n in ray_nodes.nodes}
    pinned = rh.env(name="on-w1", compute={"w1": 1})
    assert rh.function(host_address).to(c, env=pinned)() == ray_nodes.node("w1").ip
    assert c.daemon_host.stop()
    # The Ray cluster is the user's: it runs on after the daemon stops, and so do its nodes.
    assert not still_running(session_of(info["pid"]))
    assert all(node.proc.poll() is None for node in ray_nodes.nodes)


def test_local_daemon_start_passes_the_engine(own_daemon_dir: Path) -> None:
    files = local_daemon.files_for(own_daemon_dir)
    with pytest.raises(rh.DaemonError, match="needs --engine ray"):
        local_daemon.start(files, 0, engine=EngineChoice("process", "h:1"))
    assert local_daemon.running_info(files) is None


# -- several hosts over SSH (run alone: the SSH fixtures' users are shared) ----------------


def node_record(c: Any, host: str) -> dict[str, Any]:
    [(rc, out, err)] = c.run(f"cat ~/.rh/nodes/{host}.json", stream_logs=False, node=host)
    assert rc == 0, err
    return dict(json.loads(out))


@pytest.mark.usefixtures("ray_env")
def test_several_hosts_join_the_heads_ray_and_leave_by_pid(ssh_hosts: list[Any]) -> None:
    from runhouse.client import ray_nodes
    from tests import sshd

    first = ssh_hosts[1]  # the first host's home holds the session's ssh_cluster daemon
    second = sshd.start_node(first.key.parent, first, "raynode2", "127.0.0.2")
    creds = {"ssh_user": first.user, "ssh_private_key": str(first.key)}
    c = rh.cluster(
        host=["127.0.0.1", "127.0.0.2"], ssh_creds=creds, ssh_port=first.port, server_port=0
    )
    assert c.engine == "ray"
    try:
        c.up_if_not()  # runhouse[ray] on both hosts, the head's daemon and Ray, then the join
        info = c.daemon_host.info()
        assert info is not None and info["engine"] == "ray"
        record = node_record(c, "127.0.0.2")
        assert record["ray_address"] == info["ray_address"] and record["node_ip"] == "127.0.0.2"
        status = c.status()
        alive = {n["address"]: n for n in status["nodes"] if n["alive"]}
        assert set(alive) == {info["ray_address"].rsplit(":", 1)[0], "127.0.0.2"}
        assert not alive["127.0.0.2"]["head"]

        # Joining again leaves the joined node as it is (no second node on that host).
        ray_nodes.join(c.daemon_host.nodes, info, c.status)
        assert node_record(c, "127.0.0.2")["pid"] == record["pid"]

        # A worker placed on the joined node runs there; status says which runs where.
        pinned = rh.env(name="pinned", compute={"node": "127.0.0.2"})
        assert rh.function(host_address).to(c, env=pinned)() == "127.0.0.2"
        status = c.status()
        [worker] = next(e for e in status["envs"] if e["name"] == "pinned")["workers"]
        assert worker["node_address"] == "127.0.0.2"
        placed = {n["address"]: n["workers"] for n in status["nodes"]}
        assert placed["127.0.0.2"] == ["pinned/0"]

        # Bootstrapping again finds one Ray everywhere (the hosts share a home here).
        head, node = c.daemon_host.runner, c.daemon_host.nodes["127.0.0.2"]
        versions = ray_nodes.prepare(head, {"127.0.0.2": node})
        assert versions["127.0.0.1"] == versions["127.0.0.2"] is not None

        ray_processes = session_of(info["pid"]) | session_of(record["pid"])
        assert record["pid"] in ray_processes and len(ray_processes) >= 6
        assert c.daemon_host.stop()  # the joined node first (by its PID), then the daemon
        assert not still_running(ray_processes)
        [(rc, _, _)] = c.run("test -e ~/.rh/nodes/127.0.0.2.json", node="127.0.0.2")
        assert rc != 0
    finally:
        c.daemon_host.stop()
        second.stop()


def test_another_ray_on_a_host_stops_the_bootstrap_naming_each_version(
    ssh_hosts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runhouse.client import bootstrap, ray_nodes
    from runhouse.client.runners.ssh import SSHRunner

    # One wheel for the whole test, even if the checkout changes meanwhile (an edit would
    # make the second install reinstall runhouse, and Ray with it).
    wheel = bootstrap.build_wheel()
    monkeypatch.setattr(bootstrap, "build_wheel", lambda source=None: wheel)

    other, head = (
        SSHRunner("127.0.0.1", user=h.user, port=h.port, key=str(h.key)) for h in ssh_hosts
    )
    bootstrap.install(other)  # runhouse without Ray; then the host gets an older Ray's metadata
    older = (
        "import pathlib, sysconfig\n"
        "info = pathlib.Path(sysconfig.get_paths()['purelib'], 'ray-2.9.3.dist-info')\n"
        "info.mkdir()\n"
        "(info / 'METADATA').write_text('Metadata-Version: 2.1\\nName: ray\\nVersion: 2.9.3\\n')"
    )
    [(rc, _, err)] = other.run(f"~/.rh/venv/bin/python -c {shlex.quote(older)}", stream_logs=False)
    assert rc == 0, err
    try:
        with pytest.raises(RayVersionMismatchError) as raised:
            ray_nodes.prepare(head, {"second": other})
    finally:  # the host's venv is the session's: leave it as it was
        other.run("rm -r ~/.rh/venv/lib/python3*/site-packages/ray-2.9.3.dist-info")
    versions = raised.value.versions
    assert versions["second"] == "2.9.3" and versions["127.0.0.1"] not in (None, "2.9.3")
    assert "second 2.9.3" in str(raised.value) and 'node="all"' in str(raised.value)
