"""Den, the metadata server: load latency through the client against a bare FastAPI echo, and
saves per second with many concurrent clients, on SQLite and on PostgreSQL.

Started once each (benchmarks/_den_servers.py), stopped by PID at the end: a Den on SQLite,
a PostgreSQL (initdb as tests/postgres_server.py does: ``fsync=off``) with a Den on it, and a
bare FastAPI echo served with Den's uvicorn settings. Each Den gets a team: a group
``/team`` with ``--clients`` users, each a writer in it with a token of their own; one of
them saves ``/team/model`` (a function's config, about 500 bytes of JSON).

* Load latency: one caller, keep-alive, in a temporary ``$HOME`` logged in with
  ``rh.login`` as a team member. Timed in alternating rounds (``--rounds``, forward then
  reverse order, as benchmarks/call_overhead.py does): ``rh.load("/team/model",
  instantiate=False)``; ``DenStore.read`` of it (the store without name resolution); and
  GETs of the echo through the client's own HTTP layer (``DenClient``, the same keep-alive
  ``http.client`` connection and token header), to an ``async def`` route (the floor the
  target is judged on) and to a plain ``def`` route (which pays the thread-pool hop every
  Den route pays).
* Saves/s: ``--clients`` concurrent clients (benchmarks/_den_savers.py), each with its own
  ``DenStore`` (connection) and token, saving for ``--seconds`` after a warm-up. As a team
  does: each member saves new versions of a name of their own in ``/team``; then
  contended, all of them saving the same name (every save must be kept: the history then
  holds exactly versions 1..N). First as ``--clients`` processes of one client each, then
  as ``--thread-procs`` processes with several client threads each (the machine has 2
  cores: client processes compete with Den for them; the CPU seconds of Den, of
  PostgreSQL's processes and of the clients are reported with each figure, as cores busy,
  and the machine's load average at the start and end of the run, since other work on a
  shared machine moves every figure).

Prints a short summary on stderr and one JSON line on stdout. Targets (reported, never
asserted): the load p50 at most 3x the echo's; at least 500 saves/s with 32 processes on
PostgreSQL.

    .venv/bin/python benchmarks/den.py [--calls 2000] [--seconds 4] [--clients 32]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _den_savers import Savers
from _den_servers import (
    cpu_seconds,
    cpu_since,
    den_on_postgres,
    den_on_sqlite,
    echo_server,
    with_children,
)
from call_overhead import interleaved

import runhouse as rh
from runhouse.names.address import Address
from runhouse.names.den import DenStore
from runhouse.names.den_client import DenClient

LOAD_TARGET = 3.0  # load p50 at most this many times the echo's
SAVES_TARGET = 500.0  # saves/s on PostgreSQL with the full set of client processes
CONFIG = {
    "resource_type": "function",
    "name": "/team/model",
    "fn_pointers": {"module": "train.models", "name": "predict", "file": "train/models.py"},
    "env": {
        "resource_type": "env",
        "name": "torch",
        "reqs": ["torch==2.3.0", "numpy>=1.24", "pandas", "scikit-learn>=1.4"],
        "env_vars": {"OMP_NUM_THREADS": "4", "HF_HOME": "/data/hf"},
        "working_dir": "./",
    },
    "system": {"resource_type": "cluster", "name": "/team/gpu-box", "ips": ["10.0.0.12"]},
    "openapi_spec": None,
    "description": "Scores a batch of samples with the current model.",
}


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[den] {message}", file=sys.stderr, flush=True)


def summary(times: list[float]) -> dict[str, float]:
    """p50, p90 and p99 in milliseconds."""
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 4),
        "p90_ms": round(cuts[89], 4),
        "p99_ms": round(cuts[98], 4),
    }


class Team:
    """Members of ``/team`` on one Den: their names and tokens (all writers)."""

    def __init__(self, url: str, admin_token: str, size: int) -> None:
        self.url = url
        admin = DenStore(url, admin_token)
        admin.create_group(Address("den", ("team",)))
        self.members: list[tuple[str, str]] = []
        for n in range(size):
            name = f"m{n:02d}"
            reply = admin.client().request("POST", "/v1/users", {"username": name})
            self.members.append((name, str(reply.body["token"])))
            admin.add_member(Address("den", ("team",)), name, "writer")
        admin.client().close()

    def clients(self, same_name: str | None) -> list[tuple[str, tuple[str, ...]]]:
        """Each member's (token, path): a name of their own, or ``same_name`` for all."""
        return [(token, ("team", same_name or f"{name}-model")) for name, token in self.members]


def split(clients: list[Any], groups: int) -> list[list[Any]]:
    """``clients`` dealt into ``groups`` lists of nearly equal size."""
    return [clients[i::groups] for i in range(groups)]


def load_paths(url: str, echo_url: str, team: Team) -> dict[str, Callable[[], object]]:
    """The timed paths: rh.load, DenStore.read, and the echo's two routes."""
    name, token = team.members[1]
    rh.login(token=token, den_url=url)  # writes $HOME/.rh/config.yaml (a temporary home)
    address = Address("den", ("team", "model"))
    if rh.load("/team/model", instantiate=False) != CONFIG:
        raise RuntimeError(f"{name} loaded something else than /team/model's config")
    store = DenStore(url, token)
    echo = DenClient(echo_url, token)

    def echo_async() -> None:
        echo.request("GET", "/v1/echo/team/model")

    def echo_sync() -> None:
        echo.request("GET", "/v1/echo-sync/team/model")

    return {
        "load": lambda: rh.load("/team/model", instantiate=False),
        "store_read": lambda: store.read(address),
        "echo": echo_async,
        "echo_sync": echo_sync,
    }


def measure_loads(url: str, echo_url: str, team: Team, args: argparse.Namespace) -> dict:
    """Load latency on one Den, and its ratios to the echo's."""
    paths = load_paths(url, echo_url, team)
    times = interleaved(paths, args.calls, args.warmup, args.rounds)
    figures: dict[str, Any] = {name: summary(t) for name, t in times.items()}
    echo_p50 = figures["echo"]["p50_ms"]
    figures["ratio_load_to_echo_p50"] = round(figures["load"]["p50_ms"] / echo_p50, 3)
    figures["ratio_load_to_echo_sync_p50"] = round(
        figures["load"]["p50_ms"] / figures["echo_sync"]["p50_ms"], 3
    )
    figures["ratio_store_read_to_echo_p50"] = round(figures["store_read"]["p50_ms"] / echo_p50, 3)
    return figures


def measure_saves(
    savers: Savers, den_pid: int, db_pids: list[int], team: Team, args: argparse.Namespace
) -> dict[str, Any]:
    """Saves/s on one Den: own names and one shared name, as processes and as threads."""
    out: dict[str, Any] = {}
    layouts = {
        f"{args.clients}_processes": args.clients,
        f"{args.thread_procs}x{args.clients // args.thread_procs}_threads": args.thread_procs,
    }
    for layout, procs in layouts.items():
        for same in (False, True):
            key = f"{'same_name' if same else 'own_names'}_{layout}"
            shared = f"shared-{layout}" if same else None
            # The postmaster's children are looked up again after the run: backends come
            # and go with Den's connection pool.
            db = [p for pid in db_pids for p in with_children(pid)]
            before = cpu_seconds([den_pid, *db])
            run = savers.run(
                team.url,
                split(team.clients(shared), procs),
                CONFIG,
                args.seconds,
                args.save_warmup,
            )
            den_cpu = cpu_since(before, [den_pid])
            db_cpu = cpu_since(before, [p for pid in db_pids for p in with_children(pid)])
            wall = run["seconds"]
            figures: dict[str, Any] = {
                "saves_per_s": round(run["saves"] / wall, 1),
                "saves": run["saves"],
                "seconds": round(wall, 3),
                "cores_busy": {
                    "den": round(den_cpu / wall, 2),
                    "database": round(db_cpu / wall, 2) if db_pids else None,
                    "clients": round(run["clients_cpu_s"] / wall, 2),
                },
            }
            if shared:
                figures["all_versions_kept"] = versions_kept(
                    team, shared, run["saves"] + run["warmup_saves"]
                )
            out[key] = figures
            progress(f"  {key}: {figures['saves_per_s']} saves/s {figures['cores_busy']}")
    return out


def versions_kept(team: Team, name: str, expected: int) -> bool:
    """Whether ``/team/NAME`` holds exactly versions 1..``expected``."""
    store = DenStore(team.url, team.members[0][1])
    numbers = sorted(v.version for v in store.history(Address("den", ("team", name))))
    store.client().close()
    return numbers == list(range(1, expected + 1))


@contextlib.contextmanager
def temporary_home() -> Iterator[Path]:
    """A temporary folder as ``$HOME`` (with no ``RH_*`` settings): the user's own login
    and config stay untouched. Removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="rh-denbench-"))
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("RH_")]:
        del os.environ[key]
    os.environ["HOME"] = str(root / "home")
    (root / "home").mkdir()
    try:
        yield root
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, root: Path, savers: Savers) -> dict[str, Any]:
    """Start the servers, measure on each Den, stop them; the figures."""
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        progress("starting the echo, a Den on SQLite, PostgreSQL and a Den on it")
        echo_url, _ = stack.enter_context(echo_server())
        sqlite = stack.enter_context(den_on_sqlite(root))
        dens: dict[str, tuple[Any, list[int]]] = {"sqlite": (sqlite, [])}
        on_postgres = stack.enter_context(den_on_postgres(root))
        if isinstance(on_postgres, str):
            progress(f"no PostgreSQL: {on_postgres}")
            results["postgresql"] = {"skipped": on_postgres}
        else:
            dens["postgresql"] = (on_postgres[0], [on_postgres[1].pid])
        teams: dict[str, Team] = {}
        for db, (den, _) in dens.items():
            team = teams[db] = Team(den.url, den.admin_token, args.clients)
            DenStore(den.url, team.members[0][1]).append(
                Address("den", ("team", "model")), CONFIG, author=""
            )
            progress(f"{db}: load latency, {args.rounds} alternating rounds")
            results[db] = {"load": measure_loads(den.url, echo_url, team, args)}
        for db, (den, db_pids) in dens.items():
            progress(f"{db}: saves for {args.seconds:g} s per layout")
            results[db]["saves"] = measure_saves(savers, den.pid, db_pids, teams[db], args)
    return results


def targets(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Each target, its figure, and whether it is met (None when not measured)."""
    met: dict[str, Any] = {}
    for db in ("sqlite", "postgresql"):
        ratio = results[db].get("load", {}).get("ratio_load_to_echo_p50")
        met[f"load_p50_le_3x_echo_{db}"] = {
            "target": LOAD_TARGET,
            "figure": ratio,
            "met": ratio <= LOAD_TARGET if ratio is not None else None,
        }
    rate = (
        results["postgresql"]
        .get("saves", {})
        .get(f"own_names_{args.clients}_processes", {})
        .get("saves_per_s")
    )
    met["saves_ge_500_per_s_postgresql"] = {
        "target": SAVES_TARGET,
        "figure": rate,
        "met": rate >= SAVES_TARGET if rate is not None else None,
    }
    return met


def report(results: dict[str, Any], met: dict[str, Any], loadavg: list[float]) -> None:
    """The human summary, on stderr."""
    lines = [
        "",
        f"Den benchmark ({os.cpu_count()} cores shared by the clients, Den and its database; "
        f"load average {loadavg[0]:.2f} at the start, {loadavg[1]:.2f} at the end):",
    ]
    for db in ("sqlite", "postgresql"):
        figures = results[db]
        if "skipped" in figures:
            lines.append(f"  {db}: skipped ({figures['skipped']})")
            continue
        load = figures["load"]
        lines.append(
            f"  {db}: load p50 {load['load']['p50_ms']} ms (p90 {load['load']['p90_ms']}), "
            f"echo p50 {load['echo']['p50_ms']} ms (p90 {load['echo']['p90_ms']}): "
            f"{load['ratio_load_to_echo_p50']}x; def-route echo p50 "
            f"{load['echo_sync']['p50_ms']} ms; DenStore.read p50 {load['store_read']['p50_ms']}"
        )
        for key, saves in figures["saves"].items():
            kept = saves.get("all_versions_kept")
            note = "" if kept is None else f", all versions kept: {kept}"
            lines.append(
                f"    {key}: {saves['saves_per_s']} saves/s, cores busy {saves['cores_busy']}{note}"
            )
    for name, target in met.items():
        lines.append(
            f"  target {name}: {target['figure']} (target {target['target']}): "
            f"{'met' if target['met'] else 'MISSED' if target['met'] is False else '-'}"
        )
    print("\n".join(lines), file=sys.stderr, flush=True)


def main() -> None:
    """Measure load latency and saves/s on both Dens; print the summary and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--thread-procs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--save-warmup", type=int, default=3)
    args = parser.parse_args()
    # SIGTERM ends the run as Ctrl-C does: through the finally clauses that stop the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    loadavg = [round(os.getloadavg()[0], 2)]
    with temporary_home() as root:
        savers = Savers(args.clients)  # forked first: no server pipe or thread to inherit
        try:
            results = run(args, root, savers)
        finally:
            savers.close()
    loadavg.append(round(os.getloadavg()[0], 2))
    met = targets(results, args)
    report(results, met, loadavg)
    print(
        json.dumps(
            {
                "benchmark": "den",
                "calls": args.calls,
                "clients": args.clients,
                "seconds_per_layout": args.seconds,
                "cpus": os.cpu_count(),
                "load_average_1min": {"start": loadavg[0], "end": loadavg[1]},
                "sqlite": results["sqlite"],
                "postgresql": results["postgresql"],
                "targets": met,
            }
        )
    )


if __name__ == "__main__":
    main()
