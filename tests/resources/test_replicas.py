"""Envs with several replicas: calls and map items spread over the workers, objects stay on one."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import pytest

import runhouse as rh


def whoami(i: int = 0) -> tuple[int, int]:
    return i, os.getpid()


def say_and_square(i: int) -> int:
    print(f"item {i} from {os.getpid()}")
    return i * i


def wait_for(barrier_file: str, count: int) -> int:
    """Block until ``count`` calls are in flight (each appends a line), then answer the pid."""
    import time

    with open(barrier_file, "a") as f:
        f.write("x\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(barrier_file) as f:
            if len(f.readlines()) >= count:
                return os.getpid()
        time.sleep(0.01)
    raise TimeoutError("the other calls never arrived")


def fail_on_odd(i: int) -> int:
    if i % 2:
        raise ValueError(f"odd {i}")
    return i


class Tally:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def add(self, pid_check: bool = True) -> tuple[int, int]:
        self.seen.append(os.getpid())
        return len(self.seen), os.getpid()


def _env(cluster: rh.Cluster, name: str, replicas: int) -> rh.Env:
    return rh.env(name=f"{name}-{cluster.name}", replicas=replicas, working_dir=None)


def test_map_items_are_dealt_over_the_replicas_in_order(cluster: rh.Cluster) -> None:
    fn = rh.function(whoami).to(cluster, env=_env(cluster, "rep-map", 2))
    results = fn.map(range(10))
    assert [i for i, _ in results] == list(range(10))  # input order kept
    pids = [pid for _, pid in results]
    assert len(set(pids)) == 2  # both replicas took a share
    assert len(set(pids[:5])) == 1 and len(set(pids[5:])) == 1  # contiguous halves
    env = next(e for e in cluster.status()["envs"] if e["name"] == fn.env.name)
    assert env["replicas"] == 2
    assert sorted(w["replica"] for w in env["workers"]) == [0, 1]
    assert sorted(w["pid"] for w in env["workers"]) == sorted(set(pids))


def test_calls_in_flight_together_go_to_different_replicas(
    cluster: rh.Cluster, shared_tmp: Any
) -> None:
    fn = rh.function(wait_for).to(cluster, env=_env(cluster, "rep-calls", 2))
    barrier = str(shared_tmp / "barrier")
    pids: list[int] = []
    callers = [
        threading.Thread(target=lambda: pids.append(fn(barrier, 2)), daemon=True) for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(60)
    assert len(pids) == 2 and len(set(pids)) == 2  # the least busy replica took the second


def test_map_logs_stream_from_every_replica(
    cluster: rh.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    fn = rh.function(say_and_square).to(cluster, env=_env(cluster, "rep-logs", 2))
    assert fn.map([1, 2, 3, 4]) == [1, 4, 9, 16]
    out = capsys.readouterr().out
    printed = {line.split()[-1] for line in out.splitlines() if line.startswith("item ")}
    assert len(printed) == 2 and all(f"item {i} from" in out for i in (1, 2, 3, 4))


def test_map_failures_over_replicas(cluster: rh.Cluster) -> None:
    fn = rh.function(fail_on_odd).to(cluster, env=_env(cluster, "rep-fail", 3))
    with pytest.raises(ValueError, match="odd"):
        fn.map(range(6))
    results = fn.map(range(6), return_exceptions=True)
    assert [results[i] for i in (0, 2, 4)] == [0, 2, 4]
    assert [str(results[i]) for i in (1, 3, 5)] == ["odd 1", "odd 3", "odd 5"]
    assert fn.map([]) == []
    assert fn.map([2]) == [2]  # fewer items than replicas


def test_a_module_instance_lives_on_one_replica(cluster: rh.Cluster) -> None:
    Remote = rh.module(Tally).to(cluster, env=_env(cluster, "rep-module", 2))
    tally = Remote(name=f"tally-{cluster.name}")
    answers = [tally.add() for _ in range(6)]
    assert [n for n, _ in answers] == [1, 2, 3, 4, 5, 6]  # one object, its state kept
    assert len({pid for _, pid in answers}) == 1
    assert cluster.get(f"tally-{cluster.name}").seen == [answers[0][1]] * 6
    cluster.delete(f"tally-{cluster.name}")
    assert f"tally-{cluster.name}" not in cluster.keys()


def test_a_replica_that_dies_is_replaced_and_the_others_go_on(cluster: rh.Cluster) -> None:
    fn = rh.function(whoami).to(cluster, env=_env(cluster, "rep-death", 2))
    first = {pid for _, pid in fn.map(range(4))}
    assert len(first) == 2
    victim = min(first)
    fn_kill = rh.function(os.kill).to(cluster)  # the base env's worker sends the signal
    fn_kill(victim, signal.SIGKILL)
    after: set[int] = set()
    for _ in range(100):  # the death is noticed at once; a call may still see it go
        try:
            after = {pid for _, pid in fn.map(range(4))}
        except rh.WorkerDiedError:
            continue
        if len(after) == 2:
            break
    assert len(after) == 2 and victim not in after, (first, victim, after)
    assert (first - {victim}) <= after  # the other replica went on


def make_list(n: int) -> list[int]:
    return list(range(n))


def total(xs: list[int], extra: int = 0) -> int:
    return sum(xs) + extra


def test_an_object_on_one_replica_reaches_a_map_over_all(cluster: rh.Cluster) -> None:
    env = _env(cluster, "rep-refs", 2)
    maker = rh.function(make_list).to(cluster, env=env)
    summer = rh.function(total).to(cluster, env=env)
    ref = maker.remote(4)  # kept on the replica that made it
    assert summer.map([ref] * 4, range(4)) == [6, 7, 8, 9]  # every share gets the object
    assert summer(ref) == 6


def test_bad_compute_and_replicas_are_refused_when_made() -> None:
    with pytest.raises(ValueError, match="replicas"):
        rh.env(name="bad", replicas=0)
    with pytest.raises(ValueError, match="amount"):
        rh.env(name="bad", compute={"CPU": -1})
    with pytest.raises(ValueError, match="node"):
        rh.env(name="bad", compute={"node": 3})
    env = rh.env(name="ok", compute={"cpus": 1, "gpu": 0, "custom": 2}, replicas=3)
    assert env.compute == {"CPU": 1, "GPU": 0, "custom": 2}
    again = rh.Env.from_config(env.config())
    assert again.compute == env.compute and again.replicas == 3


def test_compute_no_node_has_is_refused_when_sent(cluster: rh.Cluster) -> None:
    for compute in ({"GPU": 64}, {"CPU": 1, "node": "no-such-node"}, {"unicorns": 1}):
        env = rh.env(name=f"rep-impossible-{cluster.name}", compute=compute, working_dir=None)
        with pytest.raises(rh.PlacementError) as refused:
            rh.function(whoami).to(cluster, env=env)
        message = str(refused.value)
        assert str(compute) in message and "CPU" in message  # what was asked, what nodes have
    fitting = rh.env(name=f"rep-fits-{cluster.name}", compute={"CPU": 1}, working_dir=None)
    assert rh.function(whoami).to(cluster, env=fitting)(7)[0] == 7


def test_changing_replicas_restarts_the_env_with_the_new_count(cluster: rh.Cluster) -> None:
    name = f"rep-change-{cluster.name}"
    fn = rh.function(whoami).to(cluster, env=rh.env(name=name, replicas=1, working_dir=None))
    assert len({pid for _, pid in fn.map(range(4))}) == 1
    fn = rh.function(whoami).to(cluster, env=rh.env(name=name, replicas=3, working_dir=None))
    assert len({pid for _, pid in fn.map(range(6))}) == 3


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("signals and /proc as on Linux")
