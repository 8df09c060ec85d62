"""Workers: one per env, their deaths noticed and named, envs isolated, status reported."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from typing import Any

import pytest

import runhouse as rh


def pid() -> int:
    return os.getpid()


def read_var(name: str) -> str | None:
    return os.environ.get(name)


def die_by_sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_by_segfault() -> None:
    ctypes.string_at(0)


def die_by_exit() -> None:
    os._exit(3)


@pytest.mark.parametrize(
    ("killer", "cause"),
    [
        (die_by_sigkill, "killed by SIGKILL"),
        (die_by_segfault, "segmentation fault (SIGSEGV)"),
        (die_by_exit, "exited with code 3"),
    ],
)
def test_a_dead_worker_fails_its_calls_and_is_replaced(
    cluster: rh.Cluster, killer: Any, cause: str
) -> None:
    env = rh.env(name="doomed", reqs=[])
    whoami = rh.function(pid).to(cluster, env=env)
    cluster.put("survivor", "still here", env=rh.Env(name="safe_env"))
    cluster.put("lost", "gone with the worker", env=env)
    first_pid = whoami()
    doomed = rh.function(killer).to(cluster, env=env)
    outcome: dict[str, BaseException] = {}

    def call() -> None:
        try:
            doomed()
        except BaseException as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    caller.join(10)  # a bound for a hang, not a timing claim
    error = outcome["error"]
    assert isinstance(error, rh.WorkerDiedError)
    if cluster.status()["daemon"]["engine"] == "ray":
        # An actor is the raylet's child, not the daemon's: Ray tells that it died, and on
        # which node, but not by which signal or exit code.
        cause = "died unexpectedly"
        assert "its Ray actor on node" in str(error)
    assert cause in str(error) and "doomed" in str(error)
    assert error.pid == first_pid
    assert whoami() != first_pid  # the next call starts a fresh worker, with the function
    assert cluster.get("survivor") == "still here"  # other envs are untouched
    assert "lost" not in cluster.keys()  # plain objects die with their worker


def test_env_vars_reach_the_worker(cluster: rh.Cluster) -> None:
    env = rh.env(name="with_vars", env_vars={"RH_TEST_COLOR": "blue"})
    assert rh.function(read_var).to(cluster, env=env)("RH_TEST_COLOR") == "blue"
    assert rh.function(read_var).to(cluster)("RH_TEST_COLOR") is None


def test_changed_env_restarts_its_worker(cluster: rh.Cluster) -> None:
    fn = rh.function(read_var).to(cluster, env=rh.env(name="shifting", env_vars={"V": "1"}))
    assert fn("V") == "1"
    fn = rh.function(read_var).to(cluster, env=rh.env(name="shifting", env_vars={"V": "2"}))
    assert fn("V") == "2"


def test_status_reports_envs_workers_and_objects(cluster: rh.Cluster) -> None:
    rh.function(pid).to(cluster, env=rh.env(name="status_env", env_vars={"SECRET_NAME": "x"}))
    status = cluster.status()
    daemon = status["daemon"]
    assert daemon["runhouse"] == rh.__version__ and daemon["uptime_seconds"] >= 0
    [(_, host_python, _)] = cluster.run(
        "python3 -c 'import sys; print(*sys.version_info[:3], sep=\".\")'", stream_logs=False
    )
    local = ".".join(map(str, sys.version_info[:3]))
    assert daemon["python"] == (local if cluster.host is None else host_python.strip())
    envs = {e["name"]: e for e in status["envs"]}
    assert envs["status_env"]["keys"] == ["pid"]
    assert envs["status_env"]["env_vars"] == ["SECRET_NAME"]  # names only, never values
    worker = envs["status_env"]["worker"]
    assert worker["pid"] > 0 and worker["rss_bytes"] > 0
    assert worker["objects"] == ["pid"]


def length(data: bytes) -> int:
    return len(data)


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_100mb_argument_does_not_pile_up_in_the_daemon(own_daemon_dir: Any) -> None:
    c = rh.cluster(name="local", server_port=0).up_if_not()
    daemon_pid = c.status()["daemon"]["pid"]
    fn = rh.function(length).to(c)
    before = peak_rss(daemon_pid)
    size = 100 * 1024 * 1024
    assert fn(b"x" * size, stream_logs=False) == size
    grown = peak_rss(daemon_pid) - before
    assert grown < 4 * size, f"the daemon's peak memory grew by {grown / size:.1f} copies"
