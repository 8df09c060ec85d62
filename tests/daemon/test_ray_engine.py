"""The Ray engine: env workers as Ray actors on a real Ray cluster of several nodes on this
machine (tests/ray_nodes.py), through a real daemon, as users call them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.daemon.engines.base import EnvSpec, WorkerHandle
from runhouse.daemon.engines.ray_head import descendants
from runhouse.exceptions import DaemonError, PlacementError
from runhouse.wire.engine import EngineChoice
from tests.ray_nodes import RayCluster, RayNode
from tests.resources.test_function import add, count_up, double_later

DIES_WITHIN = 15.0  # seconds: a bound for a hang, not a timing claim (it takes well under 5)


def where() -> dict[str, Any]:
    import ray

    return {
        "pid": os.getpid(),
        "node": ray.get_runtime_context().get_node_id(),
        "ip": ray.util.get_node_ip_address(),
    }


def fail(message: str) -> None:
    raise ValueError(message)


def spin(note: str) -> None:
    print(note, flush=True)
    while True:
        time.sleep(0.01)


@pytest.fixture
def ray_cluster(ray_daemon_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[rh.Cluster]:
    """The session's daemon on the Ray engine, as ``rh.cluster(name="local")``."""
    monkeypatch.setenv("RH_DAEMON_DIR", str(ray_daemon_dir))
    monkeypatch.setenv("RH_AUTOSTART_DAEMON", "false")
    c = rh.cluster(name="local")
    yield c
    c.clear()


class LineWatcher:
    """A stdout that signals when a given line has arrived."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted
        self.seen = threading.Event()
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        if self.wanted in self.text:
            self.seen.set()
        return len(text)

    def flush(self) -> None:
        return None


def call_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    return caller, outcome


def test_calls_run_in_ray_actors_with_logs_generators_async_and_errors(
    ray_cluster: rh.Cluster,
    ray_nodes: RayCluster,
    ray_daemon_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runhouse.client import local_daemon

    info = local_daemon.running_info(local_daemon.files_for(ray_daemon_dir))
    assert info is not None
    assert info["engine"] == "ray" and info["ray_address"] == ray_nodes.address
    here = rh.function(where).to(ray_cluster)()
    assert here["node"] == ray_nodes.head.id  # an env asking nothing stays by the daemon
    with open(f"/proc/{here['pid']}/cmdline", "rb") as f:
        assert f.read().startswith(b"ray::EnvActor")  # a Ray actor's process, not a child

    assert rh.function(add).to(ray_cluster)(1, 2) == 3
    assert "adding 1 and 2" in capsys.readouterr().out
    items = rh.function(count_up).to(ray_cluster)(3)
    assert next(items) == 0 and list(items) == [1, 2]
    assert asyncio.run(rh.function(double_later).to(ray_cluster)(21)) == 42
    with pytest.raises(ValueError, match="no good") as raised:
        rh.function(fail).to(ray_cluster)("no good")
    assert "(on the cluster)" in str(raised.value.__cause__)  # the remote traceback


def test_cancel_stops_a_running_call(
    ray_cluster: rh.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    spinner = rh.function(spin).to(ray_cluster, env=rh.env(name="ray_cancel", reqs=[]))
    watcher = LineWatcher("spinning")
    monkeypatch.setattr(sys, "stdout", watcher)
    caller, outcome = call_in_thread(lambda: spinner("spinning"))
    assert watcher.seen.wait(30)
    assert len(ray_cluster.cancel("spin")) == 1
    caller.join(30)
    assert isinstance(outcome["error"], rh.CallCancelledError)


def test_compute_places_the_worker_on_the_node_that_has_it(
    ray_cluster: rh.Cluster, ray_nodes: RayCluster
) -> None:
    w1, w2 = ray_nodes.node("w1"), ray_nodes.node("w2")
    try:
        by_resource = rh.env(name="ray_on_w1", compute={"w1": 1})
        assert rh.function(where).to(ray_cluster, env=by_resource)()["node"] == w1.id
        by_id = rh.env(name="ray_on_w2", compute={"node": w2.id})
        assert rh.function(where).to(ray_cluster, env=by_id)()["node"] == w2.id
        by_address = rh.env(name="ray_on_ip", compute={"node": w1.ip})
        found = rh.function(where).to(ray_cluster, env=by_address)()
        assert (found["node"], found["ip"]) == (w1.id, w1.ip)
        envs = ray_cluster.status()["envs"]
        placed = {e["name"]: e["workers"][0]["node"] for e in envs if e.get("workers")}
        assert placed["ray_on_w1"] == w1.id and placed["ray_on_ip"] == w1.id
    finally:
        release(ray_cluster, "ray_on_w1")


def where_together(barrier: str, count: int) -> dict[str, Any]:
    """Wait until ``count`` items run at once (each adds a line to ``barrier``): only items
    on different replicas can, the barrier being met by no replica alone."""
    with open(barrier, "a") as f:
        f.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + DIES_WITHIN
    while time.monotonic() < deadline:
        with open(barrier) as f:
            if len(set(f.read().split())) >= count:
                return where()
        time.sleep(0.01)
    raise TimeoutError("the other replicas' items never ran alongside")


def test_replicas_spread_over_the_nodes_and_a_map_runs_on_all_at_once(
    ray_cluster: rh.Cluster, ray_nodes: RayCluster, tmp_path: Path
) -> None:
    env = rh.env(name="ray_spread", replicas=3, working_dir=None)
    fn = rh.function(where_together).to(ray_cluster, env=env)
    barrier = tmp_path / "barrier"
    barrier.touch()
    placed = fn.map([str(barrier)] * 3, [3] * 3)  # one item per replica, all in flight
    nodes = {p["node"] for p in placed}
    assert nodes == {ray_nodes.head.id, ray_nodes.node("w1").id, ray_nodes.node("w2").id}
    status = next(e for e in ray_cluster.status()["envs"] if e["name"] == "ray_spread")
    assert {w["node"] for w in status["workers"]} == nodes
    assert len({p["pid"] for p in placed}) == 3


def test_compute_no_node_has_is_refused_when_the_env_is_declared(
    ray_cluster: rh.Cluster, ray_nodes: RayCluster
) -> None:
    with pytest.raises(PlacementError) as refused:
        rh.function(where).to(ray_cluster, env=rh.env(name="ray_huge", compute={"GPU": 4}))
    message = str(refused.value)
    assert "'GPU': 4" in message and "too little GPU" in message
    for node in ray_nodes.nodes:
        assert f"{node.ip} (id {node.id[:8]}) has CPU 1" in message  # what each node has
    with pytest.raises(PlacementError, match=r"no node has the id or address '10\.9\.9\.9'"):
        rh.function(where).to(
            ray_cluster, env=rh.env(name="ray_nowhere", compute={"node": "10.9.9.9"})
        )


def test_a_killed_actor_fails_its_calls_naming_its_node_and_the_next_call_replaces_it(
    ray_cluster: rh.Cluster, ray_nodes: RayCluster
) -> None:
    env = rh.env(name="ray_doomed", compute={"w2": 1})
    try:
        killed_mid_call(ray_cluster, ray_nodes, env)
    finally:
        release(ray_cluster, "ray_doomed")


def killed_mid_call(ray_cluster: rh.Cluster, ray_nodes: RayCluster, env: rh.Env) -> None:
    whoami = rh.function(where).to(ray_cluster, env=env)
    spinner = rh.function(spin).to(ray_cluster, env=env)
    ray_cluster.put("survivor", "still here", env=rh.env(name="ray_safe", reqs=[]))
    first = whoami()
    caller, outcome = call_in_thread(lambda: spinner("spinning", stream_logs=False))
    wait_for(lambda: running_calls(ray_cluster, "ray_doomed") == 1)
    os.kill(first["pid"], signal.SIGKILL)
    caller.join(DIES_WITHIN)
    error = outcome["error"]
    assert isinstance(error, rh.WorkerDiedError) and error.pid == first["pid"]
    node = ray_nodes.node("w2")
    assert f"on node {node.ip} (id {node.id[:8]}) died unexpectedly" in str(error)
    again = whoami()  # a fresh worker, placed where the env's compute is
    assert again["pid"] != first["pid"] and again["node"] == node.id
    assert ray_cluster.get("survivor") == "still here"  # other envs go on


def test_a_lost_node_fails_its_calls_and_the_next_call_places_a_fresh_worker(
    ray_cluster: rh.Cluster, ray_nodes: RayCluster
) -> None:
    lab = ray_nodes.add_node({"lab": 1})
    replacement: RayNode | None = None
    try:
        env = rh.env(name="ray_on_lab", compute={"lab": 1})
        whoami = rh.function(where).to(ray_cluster, env=env)
        spinner = rh.function(spin).to(ray_cluster, env=env)
        assert whoami()["node"] == lab.id
        ray_cluster.put("survivor", "still here", env=rh.env(name="ray_safe", reqs=[]))
        caller, outcome = call_in_thread(lambda: spinner("spinning", stream_logs=False))
        wait_for(lambda: running_calls(ray_cluster, "ray_on_lab") == 1)
        started = time.monotonic()
        lab.lose()
        caller.join(DIES_WITHIN)
        error = outcome["error"]
        assert isinstance(error, rh.WorkerDiedError)
        assert time.monotonic() - started < DIES_WITHIN
        assert f"on node {lab.ip} (id {lab.id[:8]})" in str(error) and "node" in error.cause
        assert ray_cluster.get("survivor") == "still here"
        replacement = ray_nodes.add_node({"lab": 1})
        assert whoami()["node"] == replacement.id  # placed again where "lab" is now
    finally:
        for node in (lab, replacement):
            if node is not None:
                node.lose()


def test_a_worker_no_free_node_can_take_fails_its_launch_clearly(ray_nodes: RayCluster) -> None:
    from runhouse.daemon.engines.ray import RayEngine

    head = ray_nodes.head

    async def main(root: Path) -> None:
        engine = RayEngine(ray_nodes.address, root, pending_timeout=3)
        await engine.start()
        deaths: list[str] = []
        holder: WorkerHandle | None = None
        try:
            spec = EnvSpec("ray_head_holder", compute={"head": 1})
            await engine.check(spec)  # the head has it: it can be placed, once it is free
            holder = await engine.launch(spec, lambda w, cause: deaths.append(cause))
            assert holder.node == head.id
            waiter = EnvSpec("ray_head_waiter", compute={"head": 1})
            await engine.check(waiter)  # it could run there: only busy, not impossible
            with pytest.raises(PlacementError) as refused:
                await engine.launch(waiter, lambda *_: None)
            why = str(refused.value)
            assert "no node had it free for 3 s" in why
            assert f"{head.ip} (id {head.id[:8]}) CPU 1" in why and "head 0" in why
        finally:
            if holder is not None:
                await holder.stop()
            await engine.stop()
        assert deaths == []  # stopped, not died

    asyncio.run(main(Path(os.environ["HOME"]) / "ray-engine"))


def test_a_daemon_with_its_own_ray_head_leaves_no_ray_process_behind(
    own_daemon_dir: Path, ray_nodes: RayCluster
) -> None:
    from runhouse.client import local_daemon

    files = local_daemon.files_for(own_daemon_dir)
    info = local_daemon.start(files, port=0, timeout=120, engine=EngineChoice("ray"))
    head = ray_head_of(int(info["pid"]))
    temp_dir = head["--temp-dir"]
    assert info["ray_address"] and info["ray_address"] != ray_nodes.address
    c = rh.cluster(name="local")
    assert rh.function(add).to(c)(2, 3) == 5
    assert ray_processes(temp_dir)  # the head's, its raylet's, the worker's
    local_daemon.stop(files)
    assert not Path(f"/proc/{head['pid']}").exists()
    wait_for(lambda: not ray_processes(temp_dir))
    assert not Path(temp_dir).exists()


def test_the_ray_head_goes_when_its_daemon_is_killed(own_daemon_dir: Path) -> None:
    from runhouse.client import local_daemon

    files = local_daemon.files_for(own_daemon_dir)
    info = local_daemon.start(files, port=0, timeout=120, engine=EngineChoice("ray"))
    temp_dir = ray_head_of(int(info["pid"]))["--temp-dir"]
    os.kill(int(info["pid"]), signal.SIGKILL)  # no stop: the kernel tells the head
    wait_for(lambda: not ray_processes(temp_dir))
    shutil.rmtree(temp_dir, ignore_errors=True)  # the daemon had no chance to


def test_a_ray_address_nothing_answers_at_is_refused_at_once(own_daemon_dir: Path) -> None:
    from runhouse.client import local_daemon

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
    files = local_daemon.files_for(own_daemon_dir)
    with pytest.raises(DaemonError) as refused:
        local_daemon.start(files, port=0, engine=EngineChoice("ray", address))
    assert f"Could not join the Ray cluster at {address}: nothing answers there" in str(
        refused.value
    )


def test_a_ray_cluster_of_another_version_is_refused_naming_both(
    ray_nodes: RayCluster, own_daemon_dir: Path
) -> None:
    from runhouse.client import local_daemon

    files = local_daemon.files_for(own_daemon_dir)
    with ray_version_claimed(ray_nodes.address, "2.0.0"), pytest.raises(DaemonError) as refused:
        local_daemon.start(files, port=0, engine=EngineChoice("ray", ray_nodes.address))
    message = str(refused.value)
    assert f"The Ray cluster at {ray_nodes.address} runs another Ray or Python version" in message
    assert "Ray: 2.0.0" in message and f"Ray: {version('ray')}" in message


@contextlib.contextmanager
def ray_version_claimed(address: str, claimed: str) -> Iterator[None]:
    """The cluster says it runs Ray ``claimed`` (its metadata in the GCS, which joining
    drivers and nodes check) until the block ends."""
    from ray._common.usage.usage_constants import CLUSTER_METADATA_KEY
    from ray._private.ray_constants import KV_NAMESPACE_CLUSTER
    from ray._raylet import GcsClient

    gcs = GcsClient(address=address)
    real = gcs.internal_kv_get(CLUSTER_METADATA_KEY, namespace=KV_NAMESPACE_CLUSTER)
    fake = json.dumps({**json.loads(real), "ray_version": claimed}).encode()
    gcs.internal_kv_put(CLUSTER_METADATA_KEY, fake, True, namespace=KV_NAMESPACE_CLUSTER)
    try:
        yield
    finally:
        gcs.internal_kv_put(CLUSTER_METADATA_KEY, real, True, namespace=KV_NAMESPACE_CLUSTER)


def release(cluster: rh.Cluster, *envs: str) -> None:
    """Give back what these envs' workers hold on the session's nodes (declaring an env
    again without compute stops its worker)."""
    for name in envs:
        rh.env(name=name, compute={}).to(cluster)


def ray_head_of(daemon_pid: int) -> dict[str, Any]:
    """The daemon's `ray start --head` child: its pid and its flags' values."""
    for pid in descendants(daemon_pid):
        args = cmdline(pid)
        if "ray.scripts.scripts" in args and "--head" in args:
            flags = dict(itertools.pairwise(args))
            return {"pid": pid, **flags}
    raise AssertionError("the daemon has no Ray head child")


def ray_processes(temp_dir: str) -> list[int]:
    """Every process whose command line names ``temp_dir`` (Ray's processes of that head)."""
    return [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and any(temp_dir in arg for arg in cmdline(int(pid)))
    ]


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def running_calls(cluster: rh.Cluster, env: str) -> int:
    for entry in cluster.status()["envs"]:
        if entry["name"] == env and entry.get("worker"):
            return int(entry["worker"].get("running_calls", 0))
    return 0


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        time.sleep(0.05)
