"""``map`` over an env's replicas: waiting items spread out, CPU-bound items use every core.

Measured on a fresh daemon (a temporary ``RH_DAEMON_DIR``, stopped at the end) running the
engine chosen (``--engine process``, the default, or ``ray``: then the daemon starts its own
Ray head, or joins ``--ray-address``):

* sleep map: ``fn.map`` of 8 items that each sleep 0.5 s, on an env with 4 replicas
  (target: at most 1.6 s wall), and on 1 replica for reference;
* CPU map: 8 items of pure-Python arithmetic (about 0.25 s each alone) on an env with 2
  replicas against the same env with 1 replica, in alternating rounds (forward then reverse
  order, so the machine's drift hits both alike); target: 2 replicas at least 1.7x faster
  on a 2-core machine. The baseline is the same map on 1 replica, measured in the same run.

Prints one JSON line on stdout (progress goes to stderr).

    .venv/bin/python benchmarks/replicas.py [--engine process|ray] [--rounds 6]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def crunch(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def progress(message: str) -> None:
    print(f"[replicas] {message}", file=sys.stderr, flush=True)


def wall(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def calibrate() -> int:
    """A loop count that takes about 0.25 s here."""
    n = 200_000
    while (spent := wall(functools.partial(crunch, n))) < 0.05:
        n *= 2
    return int(n * 0.25 / spent)


def main() -> None:
    """Measure the sleep map and the CPU map; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=("process", "ray"), default="process")
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    daemon_dir = tempfile.mkdtemp(prefix="rh-bench-")
    os.environ["RH_DAEMON_DIR"] = daemon_dir  # never the user's own daemon
    import runhouse as rh
    from runhouse.client import local_daemon
    from runhouse.wire.engine import EngineChoice

    files = local_daemon.files_for()
    choice = EngineChoice(args.engine, args.ray_address)
    progress(f"starting a daemon ({args.engine} engine) in {daemon_dir}")
    local_daemon.start(files, port=0, timeout=120, engine=choice)
    cluster = rh.cluster(name="local")
    try:

        def on(name: str, replicas: int, fn: Any) -> Any:
            env = rh.env(name=name, replicas=replicas, working_dir=None)
            return rh.function(fn).to(cluster, env=env)

        sleepy4, sleepy1 = on("sleep4", 4, nap), on("sleep1", 1, nap)
        one, two = on("cpu1", 1, crunch), on("cpu2", 2, crunch)
        n = calibrate()
        for fn in (sleepy4, sleepy1):  # start every replica before timing
            fn.map([0.0] * 4)
        for fn in (one, two):
            fn.map([1000] * 4)
        progress(f"sleep map (8 x 0.5 s) and CPU map (8 x {n} loops), {args.rounds} rounds")
        times: dict[str, list[float]] = {"sleep4": [], "sleep1": [], "cpu1": [], "cpu2": []}
        paths = {
            "sleep4": lambda: sleepy4.map([0.5] * 8),
            "sleep1": lambda: sleepy1.map([0.5] * 8),
            "cpu1": lambda: one.map([n] * 8),
            "cpu2": lambda: two.map([n] * 8),
        }
        for r in range(args.rounds):
            order = list(paths) if r % 2 == 0 else list(reversed(paths))
            for name in order:
                times[name].append(wall(paths[name]))
    finally:
        local_daemon.stop(files)
        shutil.rmtree(daemon_dir, ignore_errors=True)
    med = {name: statistics.median(values) for name, values in times.items()}
    speedup = med["cpu1"] / med["cpu2"]
    result = {
        "engine": args.engine,
        "cores": os.cpu_count(),
        "sleep_map_8x0.5s_4_replicas_s": round(med["sleep4"], 3),
        "sleep_map_8x0.5s_1_replica_s": round(med["sleep1"], 3),
        "cpu_map_1_replica_s": round(med["cpu1"], 3),
        "cpu_map_2_replicas_s": round(med["cpu2"], 3),
        "cpu_speedup_2_over_1": round(speedup, 2),
        "targets": {
            "sleep_map_at_most_s": 1.6,
            "cpu_speedup_at_least": 1.7,
            "sleep_met": med["sleep4"] <= 1.6,
            "cpu_met": speedup >= 1.7,
        },
        "rounds": args.rounds,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
