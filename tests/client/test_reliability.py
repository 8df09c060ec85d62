"""The client against broken connections, forks, daemon restarts and slow calls (issue 11).

A call runs at most once, whatever breaks; a forked child never shares its parent's
connections; a restarted daemon gets the code back and says what state it lost.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.client import http, local_daemon
from runhouse.client.http import ClusterClient
from runhouse.wire.serialization import dumps

DEADLINE = 30  # seconds any wait below may take before the test fails


def count_then_wait(log: str, gate: str) -> str:
    with open(log, "a") as f:
        f.write("start\n")
    with open(gate) as f:  # a FIFO: blocks until the test opens the gate
        f.read()
    with open(log, "a") as f:
        f.write("end\n")
    return "done"


def counted(log: str, x: int) -> int:
    with open(log, "a") as f:
        f.write("start\n")
    return x * 2


def add(a: int, b: int) -> int:
    return a + b


def greeting() -> str:
    return os.environ["GREETING"]


def spin_until(gate: str) -> str:
    try:
        while not os.path.exists(gate):
            time.sleep(0.005)
        return "opened"
    finally:
        Path(gate + ".left").touch()  # the call stopped (cancelled, here)


class Tally:
    def __init__(self) -> None:
        self.count = 0

    def increment(self) -> int:
        self.count += 1
        return self.count


def wait_for(condition: Callable[[], bool], thread: threading.Thread | None = None) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        if thread is not None:
            thread.join(0.01)
        else:
            threading.Event().wait(0.01)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def open_gate(gate: Path) -> None:
    try:
        fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:  # no reader: the call is not waiting there (any more)
        assert exc.errno == errno.ENXIO
        return
    os.write(fd, b"go")
    os.close(fd)


def call_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def record_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The connections requests go out on, newest last."""
    used: list[Any] = []
    send = ClusterClient._send

    def recording(self: ClusterClient, conn: Any, *args: Any) -> Any:
        used.append(conn)
        return send(self, conn, *args)

    monkeypatch.setattr(ClusterClient, "_send", recording)
    return used


def kill_daemon(root: Path) -> None:
    files = local_daemon.files_for(root)
    info = json.loads(files.info.read_text())
    os.kill(info["pid"], signal.SIGKILL)
    assert local_daemon._wait_for_exit(files, DEADLINE)


def test_a_call_whose_connection_breaks_is_not_run_again(
    cluster: rh.Cluster, shared_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, gate = shared_tmp / "log", shared_tmp / "gate"
    os.mkfifo(gate)
    fn = rh.function(count_then_wait).to(cluster)  # leaves a pooled connection to reuse
    used = record_connections(monkeypatch)
    caller, outcome = call_in_thread(lambda: fn(str(log), str(gate)))
    try:
        wait_for(lambda: lines(log) == ["start"], caller)
        used[-1].sock.shutdown(socket.SHUT_RDWR)  # the call's connection breaks mid-call
        wait_for(lambda: not caller.is_alive() or lines(log).count("start") > 1, caller)
    finally:
        open_gate(gate)
    wait_for(lambda: "end" in lines(log))
    caller.join(DEADLINE)
    error = outcome.get("error")
    assert isinstance(error, rh.CallInterruptedError), outcome
    assert error.cause == "connection" and error.run_key.startswith("count_then_wait@")
    assert "NOT run again" in str(error) and error.run_key in str(error)
    assert lines(log) == ["start", "end"]  # it ran once


def test_an_idle_connection_the_daemon_closed_is_retried_once(
    cluster: rh.Cluster, shared_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = shared_tmp / "log"
    fn = rh.function(counted).to(cluster)
    client = cluster._connected(autostart=False)
    idle = list(client._idle)
    assert idle
    for conn in idle:  # dead, as if the daemon closed them, and not seen to be
        conn.sock.shutdown(socket.SHUT_RDWR)
    monkeypatch.setattr(http, "dropped", lambda conn: False)
    assert fn(str(log), 21) == 42
    assert lines(log) == ["start"]


def test_the_daemon_refuses_a_call_sent_again(cluster: rh.Cluster) -> None:
    rh.function(add).to(cluster)
    client = cluster._connected(autostart=False)
    instance = client.learn_instance()
    payload = dumps(((1, 2), {}), "arguments")

    def send(**params: str) -> Any:
        response = client.request("POST", "/add/call", payload, http.PICKLE, params)
        return client.checked(response).read()

    assert send(run_key="add@sent-once", instance=instance)  # a first try that never arrived
    with pytest.raises(rh.CallInterruptedError) as seen:
        send(run_key="add@sent-once", instance=instance)
    assert seen.value.cause == "connection"
    with pytest.raises(rh.CallInterruptedError) as earlier:
        send(run_key="add@sent-elsewhere", instance="an-earlier-daemon")
    assert earlier.value.cause == "restarted" and "restarted during add.call" in str(earlier.value)
    with pytest.raises(rh.CallInterruptedError):  # its original, arriving late: not run
        send(run_key="add@sent-once")
    assert send(run_key="add@nightly") and send(run_key="add@nightly")  # a run name used again


def test_forked_children_open_their_own_connections(cluster: rh.Cluster) -> None:
    fn = rh.function(add).to(cluster)
    assert fn(0, 0) == 0
    client = cluster._connected(autostart=False)
    parent_ends = {conn.sock.getsockname() for conn in client._idle}
    children = {}
    for i in range(4):
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():  # forking a threaded process is the point here
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: one call, then report what it got and on which socket
            try:
                result = fn(i, 100)
                ends = [list(c.sock.getsockname()) for c in client._idle]
                os.write(write_end, json.dumps({"result": result, "ends": ends}).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        children[pid] = (i, read_end)
    for pid, (i, read_end) in children.items():
        with os.fdopen(read_end) as f:
            report = json.loads(f.read() or "{}")
        os.waitpid(pid, 0)
        assert report.get("result") == i + 100, report
        assert report["ends"] and not {tuple(e) for e in report["ends"]} & parent_ends
    assert fn(1, 1) == 2  # the parent's own connection is still open, and still its own
    assert {conn.sock.getsockname() for conn in client._idle} & parent_ends


def test_a_daemon_killed_mid_call_fails_the_call_saying_so(
    own_daemon_dir: Path, tmp_path: Path
) -> None:
    log, gate = tmp_path / "log", tmp_path / "gate"
    os.mkfifo(gate)
    c = rh.cluster(name="local", server_port=0).up_if_not()
    fn = rh.function(count_then_wait).to(c)
    plus = rh.function(add).to(c)
    caller, outcome = call_in_thread(lambda: fn(str(log), str(gate)))
    try:
        wait_for(lambda: lines(log) == ["start"], caller)
        kill_daemon(own_daemon_dir)
        wait_for(lambda: not caller.is_alive() or lines(log).count("start") > 1, caller)
    finally:
        open_gate(gate)
    error = outcome.get("error")
    assert isinstance(error, rh.CallInterruptedError), outcome
    assert error.cause == "died" and "died during count_then_wait.call" in str(error)
    assert plus(2, 3) == 5  # a new daemon starts, and gets the functions again
    assert lines(log) == ["start"] or lines(log) == ["start", "end"]  # never a second start


def test_a_restarted_daemon_gets_the_code_again_and_names_what_it_lost(
    own_daemon_dir: Path,
) -> None:
    c = rh.cluster(name="local", server_port=0).up_if_not()
    greet = rh.function(greeting).to(c, env=rh.env(name="greeters", env_vars={"GREETING": "hi"}))
    Remote = rh.module(Tally).to(c)
    tally = Remote(name="tally")
    assert tally.increment() == 1
    kill_daemon(own_daemon_dir)
    assert greet() == "hi"  # its env and code are sent again on their own
    with pytest.raises(rh.ObjectLostError) as lost:
        tally.increment()
    assert lost.value.key == "tally" and isinstance(lost.value, rh.ObjectNotFoundError)
    assert "restarted" in str(lost.value) and "Create it again" in str(lost.value)
    assert Remote(name="tally").increment() == 1  # the class came back: make it again


def test_a_call_past_its_timeout_is_cancelled(cluster: rh.Cluster, shared_tmp: Path) -> None:
    gate = shared_tmp / "gate"
    rh.function(spin_until).to(cluster)
    try:
        with pytest.raises(rh.CallTimeoutError) as timed_out:
            cluster.request_call("spin_until", "call", (str(gate),), timeout=0.5)
        error = timed_out.value
        assert isinstance(error, TimeoutError) and isinstance(error, rh.RunhouseError)
        assert error.cancelled and error.run_key and error.timeout == 0.5
        assert "spin_until.call" in str(error) and "0.5 s" in str(error)
        wait_for(lambda: Path(str(gate) + ".left").exists())  # it stopped on the cluster
    finally:
        gate.touch()
