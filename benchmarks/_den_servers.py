"""The servers benchmarks/den.py measures, each a child process on a free loopback port,
stopped by its PID: Den on SQLite and on PostgreSQL (started by the tests' own starters,
tests/den_servers.py and tests/postgres_server.py), and a bare FastAPI echo served the way
Den serves (runhouse/den/server.py). Also the CPU time those processes spend.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.*

from tests.den_servers import DenServer, start_den
from tests.postgres_server import PostgresServer, start_postgres

# A bare FastAPI app, served with the uvicorn settings of runhouse/den/server.py (keep them
# in step): a socket bound and listening before uvicorn runs, uvloop when installed,
# httptools when installed, no websockets, lifespan, access log, proxy headers, server or
# date header; the same keep-alive and grace. Two routes: ``async def`` (the bare floor) and
# a plain ``def`` (one hop to the thread pool, as every Den route pays).
ECHO_APP = """
import asyncio, socket, uvicorn
from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

@app.get("/v1/echo/{path:path}")
async def echo(path: str):
    return {"path": path}

@app.get("/v1/echo-sync/{path:path}")
def echo_sync(path: str):
    return {"path": path}

try:
    import httptools  # noqa: F401
    http = "httptools"
except ImportError:
    http = "h11"
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
sock.setblocking(False)
config = uvicorn.Config(app, loop="none", http=http, ws="none", lifespan="off",
                        access_log=False, log_level="warning", proxy_headers=False,
                        server_header=False, date_header=False, timeout_keep_alive=30,
                        timeout_graceful_shutdown=5)
print(sock.getsockname()[1], flush=True)  # listening already: connections queue until served
serve = uvicorn.Server(config).serve(sockets=[sock])
try:
    import uvloop
except ImportError:
    asyncio.run(serve)
else:
    uvloop.run(serve)
"""


@contextlib.contextmanager
def echo_server() -> Iterator[tuple[str, int]]:
    """The URL and PID of the FastAPI echo, a child process stopped at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_APP], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the child prints its port once it listens
        if not line.strip():
            raise RuntimeError(f"the echo server exited early (code {proc.wait()})")
        yield f"http://127.0.0.1:{int(line)}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def den_on_sqlite(root: Path) -> Iterator[DenServer]:
    """A Den on SQLite in a data folder under ``root``."""
    server = start_den(root / "den-sqlite" / "data")
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def den_on_postgres(root: Path) -> Iterator[tuple[DenServer, PostgresServer] | str]:
    """A PostgreSQL (initdb as the tests do) and a Den on its ``postgres`` database; or,
    when PostgreSQL cannot run here, the reason."""
    try:
        postgres = start_postgres()
    except pytest.skip.Exception as exc:
        yield str(exc)
        return
    try:
        den = start_den(root / "den-postgres" / "data", postgres.url)
        try:
            yield den, postgres
        finally:
            den.stop()
    finally:
        postgres.stop()


def with_children(pid: int) -> list[int]:
    """``pid`` and its direct children (a postmaster's backends, say)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if _stat(int(entry))[1] == pid:
                    pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User plus system CPU seconds each of ``pids`` spent so far (all its threads); a
    process that is gone is left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    spent = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(pid)
            spent[pid] = (fields[11] + fields[12]) / ticks  # utime, stime
    return spent


def cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds ``pids`` spent since ``before`` was taken (all of it for a process that
    was not there then, such as a database backend opened meanwhile)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in cpu_seconds(pids).items())


def _stat(pid: int) -> list[int]:
    """The numeric fields of /proc/PID/stat after the command: [state, ppid, ...] where
    index 1 is the ppid, 11 utime and 12 stime."""
    text = Path(f"/proc/{pid}/stat").read_text()
    rest = text[text.rindex(")") + 2 :].split()
    return [0] + [int(x) for x in rest[1:]]
