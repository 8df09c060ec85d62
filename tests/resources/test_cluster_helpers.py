"""The original's cluster helpers against a real daemon: run_python in an env, installing
packages, get with KeyError, rename, cancel (a call stuck in C code, force, all), connect."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest

import runhouse as rh
from tests.daemon.test_envs import make_package, tiny_version


def nap(seconds: float, gate: str) -> str:
    Path(gate).write_text("started")
    time.sleep(seconds)  # C code: a cancel reaches this thread only when it returns
    return "woke"


def pid() -> int:
    return os.getpid()


def wait_for(path: Path, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        if time.monotonic() > end:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.01)


def test_run_python_returns_a_list_and_runs_in_an_env(cluster: rh.Cluster) -> None:
    [(code, out, _)] = cluster.run_python(["import sys", "print(sys.version_info[0])"])
    assert (code, out) == (0, "3\n")
    rh.env(name="helpers_py", env_vars={"WHICH": "py"}).to(cluster)
    [(code, out, _)] = cluster.run_python(
        "import os, sys; print(os.environ['WHICH'], '/envs/' in sys.executable)",
        env="helpers_py",
        stream_logs=False,
    )
    assert (code, out) == (0, "py True\n")


def test_install_packages_into_an_env(cluster: rh.Cluster, shared_tmp: Path) -> None:
    package = make_package(shared_tmp, "4.0")
    for path in [package, *package.rglob("*")]:
        path.chmod(0o777)  # pip writes its build metadata next to the sources, as any user
    rh.env(name="helpers_install", env_vars={"WHICH": "install"}).to(cluster)
    cluster.install_packages([str(package)], env="helpers_install")
    assert rh.function(tiny_version).to(cluster, env="helpers_install")() == "4.0"
    broken = shared_tmp / "broken-package"
    broken.mkdir(mode=0o777)
    (broken / "pyproject.toml").write_text("[project\n")  # not TOML: the install fails
    with pytest.raises(rh.EnvInstallError, match="broken-package"):
        cluster.install_packages([str(broken)], env="helpers_install")


def test_get_with_keyerror_raises_and_rename_moves_the_object(cluster: rh.Cluster) -> None:
    with pytest.raises(KeyError):
        cluster.get("helpers_missing", default=KeyError)
    assert cluster.get("helpers_missing", default=7) == 7
    cluster.put("helpers_old", [1, 2])
    cluster.rename("helpers_old", "org/helpers_new")
    assert cluster.get("org/helpers_new") == [1, 2]
    assert cluster.get("helpers_old") is None
    cluster.put("helpers_taken", 0)
    with pytest.raises(rh.DaemonError, match="taken"):
        cluster.rename("org/helpers_new", "helpers_taken")


def test_a_cancelled_run_fails_at_once_though_it_sleeps_in_c(
    cluster: rh.Cluster, shared_tmp: Path
) -> None:
    fn = rh.function(nap).to(cluster)
    gate = shared_tmp / "started"
    run_key = fn.run(600, str(gate))
    wait_for(gate)
    assert cluster.cancel(run_key) == [run_key]
    with pytest.raises(rh.CallCancelledError):
        fn.get(run_key)  # answered now, while the worker thread still sleeps


def test_cancel_a_call_in_progress_from_another_thread(
    cluster: rh.Cluster, shared_tmp: Path
) -> None:
    fn = rh.function(nap).to(cluster)
    gate = shared_tmp / "started"
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            fn(600, str(gate))
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(gate)
    assert cluster.cancel_all() != []
    caller.join(30)
    assert not caller.is_alive()
    assert isinstance(outcome[0], rh.CallCancelledError)


def test_force_cancel_replaces_the_worker_and_names_what_was_lost(
    cluster: rh.Cluster, shared_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = rh.env(name="helpers_force", env_vars={"WHICH": "force"})
    fn = rh.function(nap).to(cluster, env=env)
    before = rh.function(pid).to(cluster, env=env)
    old_pid = before()
    cluster.put("helpers_state", {"lost": True}, env=env)
    gate = shared_tmp / "started"
    run_key = fn.run(600, str(gate))
    wait_for(gate)
    with caplog.at_level(logging.WARNING, logger="runhouse"):
        assert cluster.cancel(run_key, force=True) == [run_key]
    assert "helpers_state" in caplog.text
    with pytest.raises(rh.CallCancelledError):
        fn.get(run_key)
    assert before() != old_pid  # a fresh worker, with the functions sent again
    assert cluster.get("helpers_state") is None


def test_is_connected_and_disconnect(cluster: rh.Cluster) -> None:
    assert cluster.is_connected()
    cluster.disconnect()
    assert cluster.keys() is not None  # the next use reconnects
    assert cluster.is_connected()
