"""Per-call overhead of a daemon on the Ray engine, against a raw Ray actor on the same cluster.

A fresh daemon (``--engine ray``, in a temporary ``RH_DAEMON_DIR``) starts its own Ray head;
this process then joins that Ray cluster as a driver, so both paths run on the same Ray:

* ours: a no-op ``rh.function`` on that daemon (its worker is a Ray actor, reached over the
  worker's own connection to the daemon), called with and without log streaming;
* the baseline: a raw Ray actor's no-op method, ``ray.get(actor.noop.remote())``.

The paths are timed in alternating rounds (as benchmarks/call_overhead.py does), so drift
during the run hits both alike. Prints one JSON line on stdout (progress on stderr). Target:
our p50 at most 1.3x the raw actor call's. Each measurement is a function taking the
``Setup``, so more (``map`` over replicas) can join the same run.

    .venv/bin/python benchmarks/ray_engine.py [--calls 2000] [--warmup 200] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from call_overhead import Noop, interleaved, noop, summary

TARGET = 1.3  # ours p50 / raw Ray actor p50, at most


@dataclass
class Setup:
    """What the measurements share: the daemon's cluster, a raw actor, the run's settings."""

    cluster: Any
    actor: Any
    args: argparse.Namespace


def single_calls(setup: Setup) -> dict[str, Any]:
    """A no-op call through the daemon against a raw Ray actor call, interleaved."""
    import ray

    import runhouse as rh

    fn = rh.function(noop).to(setup.cluster)
    actor = setup.actor
    paths: dict[str, Callable[[], object]] = {
        "ours": fn,
        "quiet": lambda: fn(stream_logs=False),
        "ray": lambda: ray.get(actor.noop.remote()),
    }
    args = setup.args
    progress(f"{', '.join(paths)}: {args.rounds} alternating rounds of {args.calls // args.rounds}")
    times = interleaved(paths, args.calls, args.warmup, args.rounds)
    ours, quiet, raw = (summary(times[name]) for name in ("ours", "quiet", "ray"))
    assert ours is not None and quiet is not None and raw is not None
    ratio = ours["p50_ms"] / raw["p50_ms"]
    return {
        "ours": ours,
        "ours_no_stream_logs": quiet,
        "ray_actor": raw,
        "ratio_ours_to_ray_actor_p50": round(ratio, 3),
        "ratio_ours_no_stream_logs_to_ray_actor_p50": round(quiet["p50_ms"] / raw["p50_ms"], 3),
        "target_ours_p50_le_1_3x_ray_actor": {"target": TARGET, "met": ratio <= TARGET},
    }


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[ray_engine] {message}", file=sys.stderr, flush=True)


MEASUREMENTS: dict[str, Callable[[Setup], dict[str, Any]]] = {"single_call": single_calls}


def main() -> None:
    """Start a daemon with its own Ray head, join it, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    daemon_dir = tempfile.mkdtemp(prefix="rh-bench-ray-")
    os.environ["RH_DAEMON_DIR"] = daemon_dir  # never the user's own daemon
    import ray

    import runhouse as rh
    from runhouse.client import local_daemon
    from runhouse.wire.engine import EngineChoice

    files = local_daemon.files_for(Path(daemon_dir))
    results: dict[str, Any] = {}
    try:
        progress(f"starting a daemon on the Ray engine (its own Ray head) in {daemon_dir}")
        info = local_daemon.start(files, port=0, timeout=120, engine=EngineChoice("ray"))
        ray.init(address=info["ray_address"], log_to_driver=False, include_dashboard=False)
        try:
            actor = ray.remote(Noop).remote()
            setup = Setup(rh.cluster(name="local"), actor, args)
            for name, measure in MEASUREMENTS.items():
                results[name] = measure(setup)
        finally:
            ray.shutdown()
    finally:
        local_daemon.stop(files)
        shutil.rmtree(daemon_dir, ignore_errors=True)
    line = {"benchmark": "ray_engine", "calls": args.calls, "warmup": args.warmup}
    print(json.dumps({**line, **results}))


if __name__ == "__main__":
    main()
