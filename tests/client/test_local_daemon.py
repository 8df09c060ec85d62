"""The local daemon's lifecycle: CLI start/stop/restart/status, on-demand start, crashes."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.client import local_daemon


def add(a: int, b: int) -> int:
    return a + b


def runhouse_cli(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "runhouse", *args], capture_output=True, text=True)


def test_cli_start_status_restart_stop(python: str, own_daemon_dir: Path) -> None:
    started = runhouse_cli(python, "start", "--port", "0")
    assert started.returncode == 0, started.stderr
    info = json.loads((own_daemon_dir / "daemon.json").read_text())
    assert (own_daemon_dir / "daemon.pid").read_text().strip() == str(info["pid"])
    assert (own_daemon_dir / "daemon.log").exists()
    assert "already runs" in runhouse_cli(python, "start", "--port", "0").stdout

    status = runhouse_cli(python, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["daemon"]["pid"] == info["pid"]
    assert report["envs"][0]["name"] == "base" and report["envs"][0]["worker"]["pid"] > 0
    assert "WORKER PID" in runhouse_cli(python, "status").stdout

    assert runhouse_cli(python, "restart", "--port", "0").returncode == 0
    new_info = json.loads((own_daemon_dir / "daemon.json").read_text())
    assert new_info["pid"] != info["pid"]
    assert not local_daemon._alive(info["pid"])

    worker_pid = report["envs"][0]["worker"]["pid"]
    assert not local_daemon._alive(worker_pid)  # stopping the daemon stopped its workers
    assert runhouse_cli(python, "stop").stdout.startswith("Stopped")
    assert not (own_daemon_dir / "daemon.json").exists()
    assert runhouse_cli(python, "status").returncode == 1
    assert "No daemon was running" in runhouse_cli(python, "stop").stdout


def test_cluster_starts_the_daemon_on_demand_and_says_so(
    own_daemon_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c = rh.cluster(name="local", server_port=0)
    assert not c.is_up()
    with caplog.at_level(logging.INFO, logger="runhouse"):
        assert rh.function(add).to(c)(1, 2) == 3
    assert "Starting the local Runhouse daemon" in caplog.text
    assert c.is_up()
    here = rh.here
    assert isinstance(here, rh.Cluster) and here.keys() == ["add"]


def test_autostart_can_be_turned_off(own_daemon_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RH_AUTOSTART_DAEMON", "false")
    c = rh.cluster(name="local", server_port=0)
    with pytest.raises(rh.DaemonError, match="runhouse start"):
        c.keys()
    assert not (own_daemon_dir / "daemon.json").exists()
    c.up_if_not()  # asking explicitly still starts it
    assert c.is_up()


def test_a_crashed_daemon_is_restarted_by_the_next_call(
    own_daemon_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c = rh.cluster(name="local", server_port=0).up_if_not()
    fn = rh.function(add).to(c)
    assert fn(1, 1) == 2
    info = json.loads((own_daemon_dir / "daemon.json").read_text())
    os.kill(info["pid"], signal.SIGKILL)
    local_daemon._wait_for_exit(local_daemon.files_for(own_daemon_dir), 10)
    with caplog.at_level(logging.WARNING, logger="runhouse"):
        fn = rh.function(add).to(c)  # the new daemon has none of the old objects
    assert "restarting it" in caplog.text
    assert fn(2, 2) == 4


def test_a_failed_start_shows_the_log(own_daemon_dir: Path) -> None:
    blocker = rh.cluster(name="local", server_port=0).up_if_not()
    port = blocker.status()["daemon"]["port"]
    other = local_daemon.files_for(own_daemon_dir.parent / "second")
    with pytest.raises(rh.DaemonError, match="did not start") as info:
        local_daemon.start(other, port=port)  # the port is taken
    assert "Address already in use" in str(info.value) or "address" in str(info.value).lower()


def test_restart_server(own_daemon_dir: Path) -> None:
    c = rh.cluster(name="local", server_port=0).up_if_not()
    first = c.status()["daemon"]["pid"]
    c.put("x", 1)
    c.restart_server()
    assert c.status()["daemon"]["pid"] != first
    assert c.keys() == []


def test_sigterm_stops_the_daemon_cleanly(own_daemon_dir: Path) -> None:
    files = local_daemon.files_for(own_daemon_dir)
    info = local_daemon.start(files, port=0)
    worker_pid = rh.cluster(name="local").status()["envs"][0]["worker"]["pid"]
    os.kill(info["pid"], signal.SIGTERM)
    assert local_daemon._wait_for_exit(files, 15)
    assert not files.info.exists() and not files.pid.exists()  # removed by the daemon itself
    assert "runhouse daemon stopped" in files.log.read_text()
    assert not local_daemon._alive(worker_pid)


def test_stop_ends_a_running_call_with_a_clear_error(own_daemon_dir: Path, tmp_path: Path) -> None:
    started = tmp_path / "started"

    def wait_forever(marker: str) -> None:
        import pathlib
        import threading

        pathlib.Path(marker).touch()
        threading.Event().wait()

    c = rh.cluster(name="local", server_port=0).up_if_not()
    fn = rh.function(wait_forever).to(c)
    files = local_daemon.files_for(own_daemon_dir)
    failure: list[BaseException] = []

    def call() -> None:
        try:
            fn(str(started))
        except BaseException as exc:
            failure.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not started.exists():  # the call is running on the worker
        caller.join(0.01)
    pid = local_daemon.running_info(files)["pid"]
    os.kill(pid, signal.SIGTERM)
    caller.join()
    # The daemon stopped the worker first, so the call failed instead of holding the
    # daemon until `stop` ran out of patience and killed it.
    assert len(failure) == 1 and isinstance(failure[0], rh.WorkerDiedError), failure
    assert "stopped" in str(failure[0])
    assert local_daemon._wait_for_exit(files, 15)
    assert "runhouse daemon stopped" in files.log.read_text()
    assert "graceful shutdown exceeded" not in files.log.read_text()
