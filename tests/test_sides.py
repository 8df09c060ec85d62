"""Sides don't leak: the daemon and workers never import client code; the client never
imports the daemon's server stack. Each side is imported in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess

import pytest

CLIENT_ONLY = ("runhouse.resources", "runhouse.client", "runhouse.cli", "runhouse.names")
SERVER_ONLY = ("uvicorn", "uvloop", "httptools", "runhouse.daemon.app", "runhouse.daemon.server")


def modules_after(python: str, *imports: str) -> set[str]:
    code = "; ".join(f"import {m}" for m in imports)
    code += "; import sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "side",
    ["runhouse.daemon.server", "runhouse.daemon.__main__", "runhouse.daemon.worker.__main__"],
)
def test_daemon_and_workers_import_no_client_code(python: str, side: str) -> None:
    loaded = modules_after(python, side)
    leaked = sorted(m for m in loaded if m.startswith(CLIENT_ONLY))
    assert leaked == []
    assert not {"rich", "sky"} & loaded


def test_client_imports_no_server_stack(python: str) -> None:
    loaded = modules_after(
        python,
        "runhouse",
        "runhouse.resources.function",
        "runhouse.resources.module",
        "runhouse.cli",
    )
    leaked = sorted(m for m in loaded if m.startswith(SERVER_ONLY))
    assert leaked == []
