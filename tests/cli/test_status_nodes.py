"""``runhouse status``: the nodes (address, head, alive, resources free/total, load, workers)
and which env worker runs on which node, for a real daemon of each engine."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.cli.status_report import render


def cube(x: int) -> int:
    return x**3


def runhouse_cli(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "runhouse", *args], capture_output=True, text=True)


def rows(lines: list[str], first: str) -> list[list[str]]:
    """The rows (split on runs of 2+ spaces) of the table whose header starts ``first``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    table = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        table.append([cell.strip() for cell in line.split("  ") if cell.strip()])
    return table


def test_status_of_a_process_daemon_shows_its_machine_and_workers(
    python: str, own_daemon_dir: Path
) -> None:
    started = runhouse_cli(python, "start", "--port", "0")
    assert started.returncode == 0, started.stderr
    assert "engine process" in started.stdout
    assert rh.function(cube).to(rh.cluster(name="local"))(2) == 8

    shown = runhouse_cli(python, "status")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "engine process" in lines[0]
    [node] = rows(lines, "NODE")
    assert node[:3] == [socket.gethostname(), "yes", "yes"]
    assert node[-1] == "base/0"  # the worker that ran cube
    base = next(r for r in rows(lines, "ENV") if r[0] == "base")
    assert base[2] == socket.gethostname() and base[3] == "running" and "cube" in base[-1]

    # Asking `start` for another engine than the running daemon's says how to change it.
    again = runhouse_cli(python, "start", "--port", "0", "--engine", "ray")
    assert again.returncode == 1
    assert "runhouse restart --engine ray" in again.stderr
    assert runhouse_cli(python, "start", "--port", "0").returncode == 0  # no engine asked


@pytest.mark.usefixtures("own_daemon_dir")
def test_status_of_a_ray_daemon_shows_its_ray_node(
    python: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray"))
    started = runhouse_cli(python, "start", "--port", "0", "--engine", "ray")
    assert started.returncode == 0, started.stderr
    try:
        assert rh.function(cube).to(rh.cluster(name="local"))(3) == 27
        report = json.loads(runhouse_cli(python, "status", "--json").stdout)
        [head] = report["nodes"]
        lines = runhouse_cli(python, "status").stdout.splitlines()
        assert f"engine ray (Ray at {report['daemon']['ray_address']})" in lines[0]
        [node] = rows(lines, "NODE")
        assert node[:3] == [head["address"], "yes", "yes"]
        cpus = head["resources"]["CPU"]
        assert node[3] == f"{head['available']['CPU']:g}/{cpus:g} free"
        assert node[-1] == "base/0"
        base = next(r for r in rows(lines, "ENV") if r[0] == "base")
        assert base[2] == head["address"] and "cube" in base[-1]
    finally:
        assert runhouse_cli(python, "stop").returncode == 0


def test_render_shows_several_nodes_and_where_each_replica_runs() -> None:
    gib = 2**30
    status = {
        "daemon": {
            "pid": 10,
            "port": 32300,
            "uptime_seconds": 5.0,
            "runhouse": rh.__version__,
            "python": "3.11.7",
            "running_calls": 0,
            "engine": "ray",
            "ray_address": "10.0.0.4:6379",
        },
        "nodes": [
            {
                "id": "b" * 8,
                "address": "10.0.0.5",
                "head": False,
                "alive": True,
                "resources": {"CPU": 4.0, "GPU": 1.0, "memory": 8 * gib, "w1": 1.0},
                "available": {"CPU": 3.0, "GPU": 0.0, "memory": 6 * gib, "w1": 1.0},
                "load_1m": 0.5,
                "workers": ["train/1"],
            },
            {
                "id": "a" * 8,
                "address": "10.0.0.4",
                "head": True,
                "alive": True,
                "resources": {"CPU": 2.0, "memory": 4.5 * gib, "object_store_memory": 1e9},
                "available": {"CPU": 1.0, "memory": 4.5 * gib, "object_store_memory": 1e9},
                "load_1m": None,
                "workers": ["base/0", "train/0"],
            },
        ],
        "envs": [
            {
                "name": "base",
                "keys": ["fn"],
                "replicas": 1,
                "worker": {"pid": 11, "state": "running", "rss_bytes": 50 * 2**20},
                "workers": [{"pid": 11, "replica": 0, "node": "a" * 8, "rss_bytes": 50 * 2**20}],
            },
            {
                "name": "train",
                "keys": ["step"],
                "replicas": 2,
                "worker": {"pid": 12, "state": "running"},
                "workers": [
                    {"pid": 12, "replica": 0, "node": "a" * 8, "node_address": "10.0.0.4"},
                    {"pid": 13, "replica": 1, "node": "b" * 8, "responding": False},
                ],
            },
            {"name": "idle", "keys": [], "replicas": 1, "worker": None, "workers": []},
        ],
    }
    lines = render(status)
    assert lines[0].endswith("engine ray (Ray at 10.0.0.4:6379)")
    assert rows(lines, "NODE") == [
        ["10.0.0.4", "yes", "yes", "1/2 free", "-", "4.5/4.5 GiB free", "-", "-",
         "base/0, train/0"],
        ["10.0.0.5", "-", "yes", "3/4 free", "0/1 free", "6/8 GiB free", "w1 1/1 free", "0.50",
         "train/1"],
    ]  # fmt: skip
    assert rows(lines, "ENV") == [
        ["base", "11", "10.0.0.4", "running", "50 MiB", "fn"],
        ["train/0", "12", "10.0.0.4", "running", "-", "step"],
        ["train/1", "13", "10.0.0.5", "not responding", "-"],
        ["idle", "-", "-", "-", "-", "-"],
    ]
