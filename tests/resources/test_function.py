"""rh.function against a real daemon: every call style, logs, errors, runs, cancellation."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.wire.serialization import dumps


class LineWatcher(io.TextIOBase):
    """A stdout that records text and signals when a given line has arrived."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted
        self.seen = threading.Event()
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        if self.wanted in "".join(self.parts):
            self.seen.set()
        return len(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def add(a: int, b: int) -> int:
    print(f"adding {a} and {b}")
    return a + b


def count_up(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        print(f"item {i}")
        yield i


async def double_later(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def async_count(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        await asyncio.sleep(0)
        yield i * 10


def print_then_wait(gate: str) -> str:
    print("first line", flush=True)
    with open(gate) as f:  # blocks until the test opens the gate
        f.read()
    return "done"


def spin_forever(gate: str) -> None:
    print("spinning", flush=True)
    while True:
        time.sleep(0.01)


def log_everywhere() -> str:
    import logging
    import sys as remote_sys

    print("to stdout")
    print("to stderr", file=remote_sys.stderr)
    logging.getLogger("user.code").warning("a warning record")
    return "ok"


class CustomError(Exception):
    pass


def raise_custom() -> None:
    raise CustomError("custom failure")


def raise_value_error() -> None:
    raise ValueError("bad value")


class Unrebuildable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}-{b}")

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle me")


def raise_unrebuildable() -> None:
    raise Unrebuildable(1, 2)


def return_lock() -> Any:
    return threading.Lock()


def identity(x: Any) -> Any:
    return x


def test_call_and_live_result(cluster: rh.Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    fn = rh.function(add).to(cluster)
    assert fn(1, 2) == 3
    assert "adding 1 and 2" in capsys.readouterr().out
    assert fn(3, b=4, stream_logs=False) == 7
    assert capsys.readouterr().out == ""
    assert fn.local(5, 5) == 10
    assert "add" in cluster.keys()


def test_unsent_function_runs_locally() -> None:
    assert rh.function(add)(2, 2) == 4


def test_generator_streams_items(cluster: rh.Cluster) -> None:
    fn = rh.function(count_up).to(cluster)
    items = fn(4)
    assert not isinstance(items, list)
    assert next(items) == 0
    assert list(items) == [1, 2, 3]
    # Leaving a generator early drops its connection but not the client.
    partial = fn(100)
    assert next(partial) == 0
    partial.close()
    assert list(fn(2)) == [0, 1]


def test_async_function_and_async_generator(cluster: rh.Cluster) -> None:
    double = rh.function(double_later).to(cluster)
    counter = rh.function(async_count).to(cluster)

    async def main() -> tuple[int, list[int]]:
        value = await double(21)
        items = [i async for i in counter(3)]
        return value, items

    assert asyncio.run(main()) == (42, [0, 10, 20])


def test_first_log_line_arrives_before_the_call_ends(
    cluster: rh.Cluster, shared_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = shared_tmp / "gate"
    os.mkfifo(gate)
    fn = rh.function(print_then_wait).to(cluster)
    watcher = LineWatcher("first line")
    monkeypatch.setattr(sys, "stdout", watcher)
    result: dict[str, Any] = {}
    caller = threading.Thread(target=lambda: result.setdefault("value", fn(str(gate))))
    caller.start()
    assert watcher.seen.wait(30)
    assert caller.is_alive()  # the call cannot end before the gate opens
    with open(gate, "w") as f:
        f.write("go")
    caller.join(30)
    assert result["value"] == "done"


def test_stdout_stderr_and_logging_come_back(
    cluster: rh.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rh.function(log_everywhere).to(cluster)() == "ok"
    captured = capsys.readouterr()
    assert "to stdout" in captured.out
    assert "to stderr" in captured.err
    assert "WARNING | user.code | a warning record" in captured.err


class Chatter:
    """Two concurrent calls meet at the barrier, so their output surely overlaps in time."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)

    def chat(self, tag: str, lines: int) -> str:
        self.barrier.wait(timeout=30)
        for i in range(lines):
            print(f"{tag} {i}")
        return tag


def test_concurrent_calls_never_mix_logs(cluster: rh.Cluster) -> None:
    rh.module(Chatter).to(cluster)(name="chatter")
    client = cluster._connected(autostart=False)
    outputs: dict[str, str] = {}

    def call(tag: str) -> None:
        body = dumps(((tag, 300), {}), "args")
        response = client.request(
            "POST", "/chatter/chat", body, "application/octet-stream", {"logs": "1"}
        )
        text = []
        for kind, data in response.frames():
            if kind == rh_kind("STDOUT"):
                text.append(data.decode())
            elif kind == rh_kind("RESULT"):
                response.release()
                break
        outputs[tag] = "".join(text)

    threads = [threading.Thread(target=call, args=(tag,)) for tag in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for tag in ("alpha", "beta"):
        lines = outputs[tag].splitlines()
        assert lines == [f"{tag} {i}" for i in range(300)]


def rh_kind(name: str) -> Any:
    from runhouse.wire.frames import Kind

    return Kind[name]


def test_exceptions_keep_their_type_and_remote_traceback(cluster: rh.Cluster) -> None:
    with pytest.raises(ValueError, match="bad value") as info:
        rh.function(raise_value_error).to(cluster)()
    remote_tb = info.value.remote_traceback  # type: ignore[attr-defined]
    assert "in raise_value_error" in remote_tb and "ValueError: bad value" in remote_tb
    assert "runhouse/daemon/worker" not in remote_tb  # only the user's frames
    assert "(on the cluster)" in str(info.value.__cause__)

    with pytest.raises(CustomError, match="custom failure"):
        rh.function(raise_custom).to(cluster)()


def test_unrebuildable_exception_becomes_remote_error(cluster: rh.Cluster) -> None:
    with pytest.raises(rh.RemoteError) as info:
        rh.function(raise_unrebuildable).to(cluster)()
    assert info.value.remote_type.endswith("Unrebuildable")
    assert "1-2" in str(info.value)
    assert "raise_unrebuildable" in info.value.remote_traceback


def test_unpicklable_argument_and_result(cluster: rh.Cluster) -> None:
    fn = rh.function(identity).to(cluster)
    with pytest.raises(rh.SerializationError, match="type lock") as info:
        fn(threading.Lock())
    assert isinstance(info.value, TypeError)
    with pytest.raises(rh.SerializationError, match="result"):
        rh.function(return_lock).to(cluster)()
    assert fn(5) == 5  # the worker is healthy


def test_missing_key_names_the_keys_that_exist(cluster: rh.Cluster) -> None:
    rh.function(add).to(cluster)
    with pytest.raises(KeyError) as info:
        cluster.request_call("nope", "call", (1,))
    assert isinstance(info.value, rh.ObjectNotFoundError)
    assert "'nope'" in str(info.value) and "'add'" in str(info.value)


def test_run_then_get_from_another_process(cluster: rh.Cluster, python: str) -> None:
    fn = rh.function(add).to(cluster)
    key = fn.run(20, 22)
    assert fn.get(key) == 42
    script = textwrap.dedent(
        f"""
        import runhouse as rh
        from tests.resources.test_function import add
        fn = rh.function(add).to(rh.cluster(name="{cluster.rns_address}"))
        print(fn.run(1, 1))
        """
    )
    env = {
        **os.environ,
        "RH_DAEMON_DIR": os.environ["RH_DAEMON_DIR"],  # the cluster fixture's daemon
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    out = subprocess.run(
        [python, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert fn.get(out.stdout.strip()) == 2  # the first client is gone; the result is not


def test_remote_keeps_the_result_on_the_cluster(cluster: rh.Cluster) -> None:
    handle = rh.function(add).to(cluster).remote(2, 3)
    assert handle.key in cluster.keys()
    assert handle.fetch() == 5
    assert cluster.get(handle.key) == 5


def test_map_and_starmap(cluster: rh.Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    fn = rh.function(add).to(cluster)
    assert fn.map([1, 2, 3], [10, 20, 30]) == [11, 22, 33]
    assert fn.starmap([(1, 1), (2, 2)]) == [2, 4]
    assert "adding 3 and 30" in capsys.readouterr().out
    assert rh.function(double_later).to(cluster).map([1, 2]) == [2, 4]


def inverse(x: float) -> float:
    return 1 / x


async def inverse_later(x: float) -> float:
    return 1 / x


def test_map_can_return_the_exceptions_in_place(cluster: rh.Cluster) -> None:
    for fn in (rh.function(inverse).to(cluster), rh.function(inverse_later).to(cluster)):
        with pytest.raises(ZeroDivisionError):
            fn.map([1, 0, 2])
        results = fn.map([1, 0, 2, 0, 4], return_exceptions=True)
        assert [r for i, r in enumerate(results) if i in (0, 2, 4)] == [1.0, 0.5, 0.25]
        for failed in (results[1], results[3]):
            assert isinstance(failed, ZeroDivisionError)
            assert "(on the cluster)" in str(failed.__cause__)  # the remote traceback
        assert fn.starmap([(2,), (0,)], return_exceptions=True)[0] == 0.5


def test_cancel_stops_a_running_call_and_others_go_on(
    cluster: rh.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    spinner = rh.function(spin_forever).to(cluster)
    adder = rh.function(add).to(cluster)
    watcher = LineWatcher("spinning")
    monkeypatch.setattr(sys, "stdout", watcher)
    outcome: dict[str, BaseException] = {}

    def call() -> None:
        try:
            spinner("unused")
        except BaseException as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    assert watcher.seen.wait(30)
    assert adder(1, 1) == 2  # other calls go on while it spins
    assert len(cluster.cancel("spin_forever")) == 1
    caller.join(30)
    assert isinstance(outcome["error"], rh.CallCancelledError)
    assert adder(2, 2) == 4


def test_cancel_a_detached_run(cluster: rh.Cluster) -> None:
    spinner = rh.function(spin_forever).to(cluster)
    key = spinner.run("unused")
    assert cluster.cancel(key) == [key]
    with pytest.raises(rh.CallCancelledError, match=key):
        spinner.get(key)


def test_http_url_and_curl(cluster: rh.Cluster) -> None:
    fn = rh.function(add).to(cluster)
    assert fn.http_url().endswith("/add/call")
    result = subprocess.run(
        fn.http_curl(1, 2), shell=True, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == 3
    token = cluster.token()
    assert token and token in fn.http_curl(1, 2)


def test_saved_function_is_callable_by_name(cluster: rh.Cluster) -> None:
    rh.function(add).to(cluster, name="adder").save()
    loaded = rh.function(name="adder")
    assert loaded.fn is None
    assert loaded(2, 3) == 5
    assert loaded.config()["system"] == cluster.rns_address  # a named sub-resource, by address


def test_large_argument_round_trips(cluster: rh.Cluster) -> None:
    blob = os.urandom(1024) * (100 * 1024)  # 100 MiB
    back = rh.function(identity).to(cluster)(blob, stream_logs=False)
    assert back == blob


def forever(fifo: str):  # type: ignore[no-untyped-def]
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        with open(fifo, "w") as f:  # tells the test the generator was stopped
            f.write("stopped")


def test_abandoning_a_remote_generator_stops_it(cluster: rh.Cluster, shared_tmp: Path) -> None:
    fifo = shared_tmp / "stopped"
    os.mkfifo(fifo)
    fifo.chmod(0o666)  # the worker may run as another user (an SSH host's)
    items = rh.function(forever).to(cluster)(str(fifo))
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # the client walks away from an endless stream
    heard: list[str] = []
    reader = threading.Thread(target=lambda: heard.append(fifo.read_text()), daemon=True)
    reader.start()
    reader.join(30)  # a bound for a hang, not a timing claim
    assert heard == ["stopped"]
