"""The daemon against misuse and hangs: bounded request heads, silent and idle connections
closed, clients without the token kept from holding connections, a connection cap, status
that answers with a hung worker, idle workers stopped and restarted, deeply nested JSON.

Each test runs a daemon of its own with short limits (set by RH_* variables, read at start).
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

import runhouse as rh
from runhouse.cli import main
from runhouse.client import local_daemon

T = TypeVar("T")
BOUND = 30.0  # seconds: a bound on a hang, never a timing claim
FAST = {
    "worker_idle_timeout": 0,
    "request_head_timeout": 1,
    "connection_idle_timeout": 1,
    "max_connections": 4096,
}


@dataclass
class Daemon:
    cluster: rh.Cluster
    port: int
    token: str
    pid: int

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.settimeout(BOUND)
        return sock

    def head(self, path: str, token: str | None = None) -> bytes:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        return f"GET {path} HTTP/1.1\r\nHost: daemon\r\n{auth}\r\n".encode()


@pytest.fixture
def start_daemon(own_daemon_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Daemon]:
    """Start the test's own daemon with ``FAST`` settings, overridden by keyword."""

    def start(**settings: int) -> Daemon:
        for key, value in {**FAST, **settings}.items():
            monkeypatch.setenv(f"RH_{key.upper()}", str(value))
        cluster = rh.cluster(name="local", server_port=0).up_if_not()
        files = local_daemon.files_for(own_daemon_dir)
        info = files.read_info()
        assert info is not None
        return Daemon(cluster, info["port"], files.token.read_text().strip(), info["pid"])

    return start


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the daemon sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"the daemon left the connection open; got {data[:80]!r}"
            ) from None
        if not chunk:
            return data
        data += chunk


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response's status and body, leaving the connection as the daemon leaves it."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


def wait_for(condition: Callable[[], T], what: str) -> T:
    """Poll ``condition`` until it is true (bounded by ``BOUND``)."""
    deadline = time.monotonic() + BOUND
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)  # the polling interval: the condition is what is waited on
    return value


def env(name: str) -> rh.Env:
    return rh.env(name=name, reqs=[])


def workers(cluster: rh.Cluster) -> dict[str, Any]:
    return {e["name"]: e["worker"] for e in cluster.status()["envs"]}


def test_a_request_head_over_64_kib_is_answered_431_and_closed(
    start_daemon: Callable[..., Daemon],
) -> None:
    daemon = start_daemon()
    with daemon.connect() as sock:
        sock.sendall(b"GET /_rh/health HTTP/1.1\r\nX-Big: " + b"a" * (200 * 1024) + b"\r\n\r\n")
        answer = read_to_end(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert daemon.cluster.status()["daemon"]["pid"] == daemon.pid  # others are served


def test_silent_and_slow_connections_are_closed(start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(request_head_timeout=1)
    with daemon.connect() as silent, daemon.connect() as slow:
        slow.sendall(b"GET /_rh/health HTTP/1.1\r\nHost:")  # and never the rest
        assert read_to_end(silent) == b""
        assert read_to_end(slow) == b""


def noop() -> str:
    return "done"


def test_idle_keep_alive_connections_are_closed_and_the_client_reconnects(
    start_daemon: Callable[..., Daemon],
) -> None:
    daemon = start_daemon(connection_idle_timeout=1)
    fn = rh.function(noop).to(daemon.cluster)
    assert fn() == "done"  # the client's pooled connection is idle from here
    with daemon.connect() as sock:
        sock.sendall(daemon.head("/_rh/status", daemon.token))
        status, _ = read_response(sock)
        assert status == 200
        assert read_to_end(sock) == b""  # closed once idle; the pooled one was idle longer
    assert fn() == "done"  # the pool notices its closed connection and opens another


def test_a_connection_without_the_token_is_closed_after_its_answer(
    start_daemon: Callable[..., Daemon],
) -> None:
    daemon = start_daemon()
    for path, token, expected in [
        ("/_rh/status", None, 401),
        ("/_rh/status", "wrong", 403),
        ("/_rh/health", None, 200),  # public, but no reason to keep the connection
    ]:
        with daemon.connect() as sock:
            sock.sendall(daemon.head(path, token))
            answer = read_to_end(sock)
        assert answer.startswith(f"HTTP/1.1 {expected} ".encode()), (path, token)
    with daemon.connect() as sock:  # with the token, the connection is kept for more
        for _ in range(2):
            sock.sendall(daemon.head("/_rh/status", daemon.token))
            assert read_response(sock)[0] == 200


def open_files_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open files limit")


@pytest.fixture
def low_file_limit() -> Iterator[int]:
    """A soft open-files limit below the hard one while the daemon starts (it inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip("the hard limit of open files is too low to lower the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_connections_past_the_cap_close_idle_ones_without_the_token_or_are_refused(
    start_daemon: Callable[..., Daemon], low_file_limit: int
) -> None:
    cap = 8
    daemon = start_daemon(max_connections=cap, request_head_timeout=600)
    assert open_files_limits(daemon.pid)[0] == low_file_limit  # raised to the hard limit
    silent = [daemon.connect() for _ in range(cap + 1)]
    try:
        assert read_to_end(silent[0]) == b""  # the oldest made room (its head clock is 600 s)
        silent[-1].sendall(daemon.head("/_rh/health", daemon.token))
        assert read_response(silent[-1])[0] == 200  # the newest was let in
    finally:
        for sock in silent:
            sock.close()
    trusted: list[socket.socket] = []
    try:
        # Connections that showed the token are never closed to make room: past the cap
        # (the client's own pooled connections count too), new ones are refused.
        for _ in range(cap + 20):
            sock = daemon.connect()
            trusted.append(sock)
            if health(daemon, sock) != 200:
                break
        else:
            raise AssertionError("no connection was refused past the cap")
        trusted.pop().close()
        with daemon.connect() as sock:  # sending nothing, it reads the refusal in full
            assert read_to_end(sock).startswith(b"HTTP/1.1 503 ")
        trusted.pop(0).close()
        wait_for(lambda: served(daemon), "a connection once one was closed")
    finally:
        for sock in trusted:
            sock.close()


def health(daemon: Daemon, sock: socket.socket) -> int | None:
    """The status of an authorized health check on ``sock``; None if it was reset."""
    try:
        sock.sendall(daemon.head("/_rh/health", daemon.token))
        return read_response(sock)[0]
    except (http.client.HTTPException, ConnectionError):
        return None


def served(daemon: Daemon) -> bool:
    with daemon.connect() as sock:
        return health(daemon, sock) == 200


def worker_pid() -> int:
    return os.getpid()


def test_status_answers_and_names_a_stopped_worker(
    start_daemon: Callable[..., Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = start_daemon()
    in_frozen = rh.function(worker_pid).to(daemon.cluster, env=env("frozen"))
    frozen_pid = in_frozen()
    os.kill(frozen_pid, signal.SIGSTOP)
    try:
        outcome: dict[str, Any] = {}
        asker = threading.Thread(target=lambda: outcome.update(status=workers(daemon.cluster)))
        asker.start()
        asker.join(BOUND)
        assert "status" in outcome, "status did not answer with a stopped worker"
        status = outcome["status"]
        frozen = {"pid": frozen_pid, "state": "running", "responding": False}
        assert frozen.items() <= status["frozen"].items()
        assert status["base"]["responding"] is True and status["base"]["pid"] > 0
        assert main(["status"]) == 0
        lines = capsys.readouterr().out.splitlines()
        row = next(line for line in lines if line.startswith("frozen"))  # its worker's row
        assert "not responding" in row and str(frozen_pid) in row
        with pytest.raises(rh.DaemonError, match="did not answer") as raised:
            daemon.cluster.delete(in_frozen.key)  # an answer that takes a worker no time
        assert raised.value.status == 504
    finally:
        os.kill(frozen_pid, signal.SIGCONT)


class Tally:
    """A module whose instance keeps state in its worker."""

    def __init__(self) -> None:
        self.count = 0


def test_idle_workers_stop_unless_they_hold_state_and_restart_on_the_next_call(
    start_daemon: Callable[..., Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = start_daemon(worker_idle_timeout=1)
    c = daemon.cluster
    c.put("kept", {"plain": "object"}, env=env("holder"))
    rh.module(Tally).to(c, env=env("modules"))(name="tally")
    fn = rh.function(worker_pid).to(c, env=env("sleepy"))
    first = fn()
    wait_for(lambda: workers(c)["sleepy"]["state"] == "stopped", "the idle worker to stop")
    status = workers(c)
    assert status["sleepy"] == {"state": "stopped", "reason": "idle"}
    assert status["holder"]["responding"] and status["modules"]["responding"]  # idle longer
    assert status["base"]["responding"]  # the base env's worker stays for quick first calls
    assert main(["status"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "sleepy" in line)
    assert "stopped (idle)" in row and "worker_pid" in row  # its function is still held
    second = fn()  # starts the worker again, with the function restored
    assert second != first
    assert workers(c)["sleepy"]["pid"] == second
    assert c.get("kept") == {"plain": "object"}


def wait_for_release(started: str, gate: str) -> str:
    Path(started).touch()
    with open(gate) as f:  # a FIFO: blocks until the test writes
        return f.read()


def release(gate: Path, caller: threading.Thread) -> None:
    """Let the blocked call return (if it still waits: a plain open would block forever)."""

    def opened() -> bool:
        try:
            fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader (yet, or any more)
            return not caller.is_alive()
        os.write(fd, b"released")
        os.close(fd)
        return True

    wait_for(opened, "the call to read the gate")


def test_a_worker_running_a_call_is_not_stopped(
    start_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    daemon = start_daemon(worker_idle_timeout=1)
    c = daemon.cluster
    started, gate = tmp_path / "started", tmp_path / "gate"
    os.mkfifo(gate)
    blocked = rh.function(wait_for_release).to(c, env=env("busy"))
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = blocked(str(started), str(gate))
        except BaseException as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    try:
        wait_for(started.exists, "the call to start")
        rh.function(noop).to(c, env=env("later"))()  # idle from after the busy call started
        wait_for(lambda: workers(c)["later"]["state"] == "stopped", "the idle worker to stop")
        assert workers(c)["busy"]["state"] == "running"
    finally:
        release(gate, caller)
        caller.join(BOUND)
    assert outcome == {"value": "released"}
    wait_for(lambda: workers(c)["busy"]["state"] == "stopped", "the worker to stop once idle")


def test_deeply_nested_json_is_a_400(start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon()
    daemon.cluster.put("box", {"a": 1})
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=BOUND)
    headers = {"Authorization": f"Bearer {daemon.token}", "Content-Type": "application/json"}
    deep = "[" * 100_000
    try:
        conn.request("PUT", "/_rh/envs/deep", deep, headers)
        response = conn.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["error"]["type"] == "BadRequest"
        conn.request("POST", "/box/get", '{"args": ' + deep + "}", headers)
        response = conn.getresponse()
        assert response.status == 400
        error = json.loads(response.read())["error"]
        assert error["type"] == "SerializationError" and "nested too deeply" in error["message"]
    finally:
        conn.close()
    assert daemon.cluster.get("box") == {"a": 1}  # the worker is unharmed


@pytest.fixture
def h11_server() -> Iterator[Callable[[int], int]]:
    """Servers on the h11 fallback with the daemon's guards (token "t", head clock 1 s), in
    threads: the daemon itself uses httptools wherever it runs. Takes the cap, gives a port."""
    import asyncio

    import uvicorn

    from runhouse.daemon import guards

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(max_connections: int) -> int:
        limits = guards.Limits(
            head_timeout=1, max_connections=max_connections, authorization=b"Bearer t"
        )
        config = uvicorn.Config(
            app,
            http=guards.protocol_class("h11", limits),
            ws="none",
            lifespan="off",
            log_level="warning",
            h11_max_incomplete_event_size=limits.max_head,
        )
        server = uvicorn.Server(config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
        thread.start()
        running.append((server, thread, sock))
        return int(sock.getsockname()[1])

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(BOUND)
        sock.close()


def test_the_h11_fallback_has_the_guards_too(h11_server: Callable[[int], int]) -> None:
    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(BOUND)
        return sock

    request = b"GET / HTTP/1.1\r\nHost: x\r\n"
    authorized = request + b"Authorization: Bearer t\r\n\r\n"
    port = h11_server(100)
    with connect(port) as sock:  # without the token: answered, then closed
        sock.sendall(request + b"\r\n")
        assert read_to_end(sock).startswith(b"HTTP/1.1 200 ")
    with connect(port) as sock:  # with it: kept for more
        for _ in range(2):
            sock.sendall(authorized)
            assert read_response(sock) == (200, b"ok")
    with connect(port) as silent:  # a silent one is closed by its head clock
        assert read_to_end(silent) == b""
    port = h11_server(2)
    with connect(port) as first, connect(port) as second:
        for sock in (first, second):
            sock.sendall(authorized)
            assert read_response(sock) == (200, b"ok")
        with connect(port) as third:  # past the cap, refused at once (not after 1 s, silent)
            assert read_to_end(third).startswith(b"HTTP/1.1 503 ")
