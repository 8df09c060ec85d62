"""Per-call overhead of a Runhouse function call, against an HTTP floor and a Ray peer.

Measured in one run, each with the same number of sequential calls after a warm-up. All the
servers below run at once and the paths are timed in alternating rounds (``--rounds``, in
forward then reverse order), so that a machine's drift during the run hits every path alike
instead of whichever happened to be measured last:

* ours: a no-op ``rh.function`` on the local daemon (a fresh daemon in a temporary
  ``RH_DAEMON_DIR``, stopped at the end), called with and without log streaming;
* the floor: a raw ASGI echo app served by uvicorn with the daemon's settings (uvloop,
  httptools, no lifespan/access log/proxy/server/date headers) in a child process on a free
  port, called through the same ``ClusterClient``;
* a reference (no target): the same echo relayed through a forked child process over a
  socketpair, the least any design with per-env worker processes pays;
* ours over SSH: the same no-op on a cluster on a throwaway loopback sshd host
  (benchmarks/ssh_host.py; needs root, openssh-server, rsync), through the SSH tunnel;
* a reference for it (no target): the echo reached through the same kind of SSH forward,
  which shows what the tunnel itself adds to a round trip;
* then, on their own: throughput (64 threads sharing one ``Function``, calling it
  repeatedly), and the peer, a Ray actor's no-op method (``ray.get(actor.noop.remote())``),
  when ``ray`` is importable (null otherwise; Ray's own processes would load the machine).

Prints one JSON line on stdout (progress goes to stderr). Targets: our p50 at most 1.5x the
echo p50 and at most 0.6x Ray's; at least 2,000 calls/s with 64 callers; over SSH, at most
1.2x the local p50.

    .venv/bin/python benchmarks/call_overhead.py [--calls 2000] [--warmup 200] [--rounds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

_READ_BODY = """
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
"""

_ANSWER_AND_SERVE = """
    headers = [(b"content-type", b"application/octet-stream"),
               (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
sock.setblocking(False)
config = uvicorn.Config(app, loop="none", http="httptools", lifespan="off", access_log=False,
                        log_level="warning", proxy_headers=False, server_header=False,
                        date_header=False, timeout_keep_alive=3600)
print(sock.getsockname()[1], flush=True)  # listening already: connections queue until served
uvloop.run(uvicorn.Server(config).serve(sockets=[sock]))
"""

ECHO_SERVER = (
    """
import socket, uvicorn, uvloop

async def app(scope, receive, send):
"""
    + _READ_BODY
    + _ANSWER_AND_SERVE
)

# The same echo, but each body makes a round trip through a child process over a socketpair
# first (length-prefixed frames, a blocking reader in the child, an asyncio Protocol in the
# server): the least a daemon that runs calls in separate worker processes can cost.
RELAY_SERVER = (
    """
import asyncio, os, socket, struct, uvicorn, uvloop

LEN = struct.Struct("!I")
parent, child = socket.socketpair()
if os.fork() == 0:
    parent.close()
    reader = child.makefile("rb")
    while True:
        head = reader.read(4)
        if len(head) < 4:
            os._exit(0)
        child.sendall(head + reader.read(LEN.unpack(head)[0]))
child.close()

class Relay(asyncio.Protocol):
    def __init__(self):
        self.buffer, self.waiting = bytearray(), []
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.buffer += data
        while len(self.buffer) >= 4:
            size = LEN.unpack_from(self.buffer)[0]
            if len(self.buffer) < 4 + size:
                break
            body = bytes(self.buffer[4:4 + size])
            del self.buffer[:4 + size]
            self.waiting.pop(0).set_result(body)

relay = None

async def app(scope, receive, send):
    global relay
    if relay is None:
        _, relay = await asyncio.get_running_loop().create_unix_connection(Relay, sock=parent)
"""
    + _READ_BODY
    + """
    answer = asyncio.get_running_loop().create_future()
    relay.waiting.append(answer)
    relay.transport.write(LEN.pack(len(body)) + body)
    body = await answer
"""
    + _ANSWER_AND_SERVE
)


def noop() -> None:
    """The remote no-op being called."""


class Noop:
    """The Ray actor whose no-op method is called."""

    def noop(self) -> None:
        """Do nothing."""


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[call_overhead] {message}", file=sys.stderr, flush=True)


def timed(call: Callable[[], object], calls: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``calls`` sequential calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    clock = time.perf_counter_ns
    times = []
    for _ in range(calls):
        start = clock()
        call()
        times.append((clock() - start) / 1e6)
    return times


def summary(times: list[float] | None) -> dict[str, float] | None:
    """p50 and p99 in milliseconds (None when not measured)."""
    if times is None:
        return None
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 4), "p99_ms": round(cuts[98], 4)}


@contextlib.contextmanager
def echo_server(server: str = ECHO_SERVER) -> Iterator[int]:
    """The port of a raw uvicorn echo endpoint served by a child process running ``server``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", server], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the child prints its port once it listens
        if not line.strip():
            raise RuntimeError(f"the echo server exited early (code {proc.wait()})")
        yield int(line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def echo_call(port: int) -> Callable[[], None]:
    """One echo round trip to ``port`` through a ``ClusterClient``, as ours is called."""
    from runhouse.client.http import ClusterClient

    client = ClusterClient("127.0.0.1", port, None)
    body = b"x" * 16

    def call() -> None:
        if client.request("POST", "/echo", body, "application/octet-stream").read() != body:
            raise RuntimeError("the echo server answered a different body")

    return call


def ray_times(calls: int, warmup: int) -> list[float] | None:
    """Latencies of a Ray actor method call, or None when Ray is not installed."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
    except ImportError:
        return None
    ray.init(include_dashboard=False, num_cpus=2, log_to_driver=False)
    try:
        actor = ray.remote(Noop).remote()
        return timed(lambda: ray.get(actor.noop.remote()), calls, warmup)
    finally:
        ray.shutdown()


@contextlib.contextmanager
def ssh_calls(echo_port: int) -> Iterator[dict[str, Callable[[], object]]]:
    """Over an SSH host's tunnels: our no-op on its cluster ("ssh") and the echo on
    ``echo_port`` ("echo_ssh", the tunnel's own cost); none when no SSH host can run here."""
    from ssh_host import available, cluster_on, ssh_host

    import runhouse as rh

    if available() is not None:
        yield {}
        return
    with ssh_host("rhbench2") as host:
        cluster = cluster_on(host)
        try:
            fn = rh.function(noop).to(cluster)
            # The same kind of forward as the daemon's, to the echo server (on loopback here).
            yield {"ssh": fn, "echo_ssh": echo_call(cluster.ssh_tunnel(remote_port=echo_port))}
        finally:
            cluster.daemon_host.stop()


def interleaved(
    paths: dict[str, Callable[[], object]], calls: int, warmup: int, rounds: int
) -> dict[str, list[float]]:
    """Each path's call times, measured in alternating rounds so that drift hits all alike."""
    for call in paths.values():
        timed(call, 0, warmup)
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            times[name] += timed(paths[name], calls // rounds, warmup // rounds)
    return times


def throughput(fn: Callable[..., Any], threads: int, per_thread: int) -> float:
    """Calls per second with ``threads`` callers sharing ``fn``, each making ``per_thread``."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            for _ in range(5):  # warm-up: each caller gets its own pooled connection
                fn(stream_logs=False)
            barrier.wait()
            for _ in range(per_thread):
                fn(stream_logs=False)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=caller, name=f"caller-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return threads * per_thread / wall


def main() -> None:
    """Measure ours, the echo floor, Ray and throughput; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--per-thread", type=int, default=60)
    args = parser.parse_args()

    daemon_dir = tempfile.mkdtemp(prefix="rh-bench-")
    os.environ["RH_DAEMON_DIR"] = daemon_dir  # never the user's own daemon
    import runhouse as rh

    cluster = rh.cluster(name="local", server_port=0)
    try:
        with contextlib.ExitStack() as stack:
            progress(f"starting a daemon in {daemon_dir}, the echo servers and an SSH host")
            fn = rh.function(noop).to(cluster)
            echo_port = stack.enter_context(echo_server())
            paths: dict[str, Callable[[], object]] = {
                "ours": fn,
                "quiet": lambda: fn(stream_logs=False),
                "echo": echo_call(echo_port),
                "relay": echo_call(stack.enter_context(echo_server(RELAY_SERVER))),
                **stack.enter_context(ssh_calls(echo_port)),
            }
            progress(f"{', '.join(paths)}: {args.rounds} alternating rounds")
            times = interleaved(paths, args.calls, args.warmup, args.rounds)
        progress(f"throughput: {args.threads} threads x {args.per_thread} calls")
        calls_per_s = throughput(fn, args.threads, args.per_thread)
    finally:
        cluster.daemon_host.stop()
        shutil.rmtree(daemon_dir, ignore_errors=True)
    progress("peer: Ray actor")
    peer = ray_times(args.calls, args.warmup)
    ours, quiet, echo, relay = (times[name] for name in ("ours", "quiet", "echo", "relay"))
    ssh, echo_ssh = times.get("ssh"), times.get("echo_ssh")

    ours_s, echo_s, ray_s = summary(ours), summary(echo), summary(peer)
    relay_s, ssh_s, echo_ssh_s = summary(relay), summary(ssh), summary(echo_ssh)
    assert ours_s is not None and echo_s is not None and relay_s is not None
    ratio_echo = ours_s["p50_ms"] / echo_s["p50_ms"]
    ratio_ray = ours_s["p50_ms"] / ray_s["p50_ms"] if ray_s else None
    print(
        json.dumps(
            {
                "benchmark": "call_overhead",
                "calls": args.calls,
                "warmup": args.warmup,
                "ours": ours_s,
                "ours_no_stream_logs": summary(quiet),
                "echo": echo_s,
                "echo_via_worker_process": relay_s,
                "ours_over_ssh_tunnel": ssh_s,
                "ratio_ssh_to_local_p50": (
                    round(ssh_s["p50_ms"] / ours_s["p50_ms"], 3) if ssh_s else None
                ),
                "echo_over_ssh_tunnel": echo_ssh_s,
                "ratio_echo_over_ssh_tunnel_to_echo_p50": (
                    round(echo_ssh_s["p50_ms"] / echo_s["p50_ms"], 3) if echo_ssh_s else None
                ),
                "ray": ray_s,
                "ratio_ours_to_echo_p50": round(ratio_echo, 3),
                "ratio_ours_to_echo_via_worker_process_p50": round(
                    ours_s["p50_ms"] / relay_s["p50_ms"], 3
                ),
                "ratio_ours_to_ray_p50": round(ratio_ray, 3) if ratio_ray is not None else None,
                "throughput_calls_per_s": round(calls_per_s, 1),
                "throughput_calls": args.threads * args.per_thread,
                "throughput_threads": args.threads,
                "targets": {
                    "ours_p50_le_1_5x_echo": {"target": 1.5, "met": ratio_echo <= 1.5},
                    "ours_p50_le_0_6x_ray": {
                        "target": 0.6,
                        "met": ratio_ray <= 0.6 if ratio_ray is not None else None,
                    },
                    "throughput_ge_2000_per_s": {"target": 2000, "met": calls_per_s >= 2000},
                    "ssh_p50_le_1_2x_local": {
                        "target": 1.2,
                        "met": ssh_s["p50_ms"] / ours_s["p50_ms"] <= 1.2 if ssh_s else None,
                    },
                },
            }
        )
    )


if __name__ == "__main__":
    main()
