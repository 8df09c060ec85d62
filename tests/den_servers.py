"""Real Den servers for tests: ``python -m runhouse den start --foreground`` as a child
process on a free port, on SQLite and on PostgreSQL. Registered in ``tests/conftest.py``.

Fixtures:
    den_sqlite   (session)  a Den on SQLite in its own data folder
    den_postgres (session)  a Den on a fresh database of the session's PostgreSQL
    den          (function, parametrized "sqlite" / "postgresql") one of the two

Each yields a ``DenServer``: ``.url``, ``.admin_token``, ``.data_dir``, ``.db_url``,
``.pid``, ``.output`` (what the process printed), ``.request(...)`` (one HTTP request,
stdlib only), ``.create_user(name, admin=False) -> token`` and
``.new_user(prefix="u", admin=False) -> DenUser(name, token)`` (a name unique in the
session: tests that share a Den never share users, groups or folders), and
``.sql(statement, **params)`` (run SQL on Den's database, for states no route makes, such
as an expired token; Den's cache is cleared after it). ``start_den(...)`` starts one for
tests about starting.

What running it taught: Den is ready in about 0.5 s on SQLite (migrations included);
``--port 0`` picks the port, which Den records in ``DATA_DIR/den.json`` once it listens.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.processes import stop_child

READY_WITHIN = 60.0  # seconds a Den may take to answer /v1/health
STOP_WITHIN = 15.0  # seconds after SIGINT before SIGKILL
_NO_BODY: Any = object()


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, JSON body (None if not JSON), headers (lower-cased names)."""

    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class DenUser:
    """A user made for one test, and their token."""

    name: str
    token: str


def unique(prefix: str = "u") -> str:
    """A name no other test of the session uses."""
    return f"{prefix}{secrets.token_hex(5)}"


@dataclass
class DenServer:
    """A running Den child process, and ways to talk to it."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    db_url: str
    url: str = ""
    admin_token: str = ""
    log: Path = field(default_factory=Path)
    cafile: str | None = None

    @property
    def pid(self) -> int:
        """The Den process's PID."""
        return self.proc.pid

    @property
    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def request(
        self,
        method: str,
        route: str,
        body: Any = _NO_BODY,
        token: str | None = None,
        data: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request (``body`` as JSON, or ``data`` as is: an iterable of bytes goes
        chunked); never raises on a status."""
        parts = urlsplit(self.url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.cafile)
            conn = http.client.HTTPSConnection(parts.netloc, timeout=60, context=context)
        else:
            conn = http.client.HTTPConnection(parts.netloc, timeout=60)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if body is not _NO_BODY:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, route, body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        names = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, parsed, names, raw)

    def create_user(self, name: str, admin: bool = False) -> str:
        """Add user ``name`` (as Den's admin); returns their token."""
        reply = self.request(
            "POST", "/v1/users", {"username": name, "admin": admin}, token=self.admin_token
        )
        assert reply.status == 200, reply
        return str(reply.body["token"])

    def new_user(self, prefix: str = "u", admin: bool = False) -> DenUser:
        """A new user with a session-unique name, and their token."""
        name = unique(prefix)
        return DenUser(name, self.create_user(name, admin))

    def sql(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run one SQL statement on Den's database (committed); the rows it returned. Den
        is then told to forget its cache, as an operator who edits the database must."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.db_url)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statement), params)
                rows = [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()
        if self.admin_token and self.proc.poll() is None:
            try:
                cleared = self.request("DELETE", "/v1/cache", token=self.admin_token)
            except ConnectionError:
                return rows  # Den is stopping: nothing it cached will be read again
            assert cleared.status == 200, cleared
        return rows

    def stop(self) -> int:
        """Stop Den by its PID (SIGINT, then SIGKILL after a deadline); its exit code."""
        return stop_child(self.proc, STOP_WITHIN)


def den_command(data_dir: Path, db_url: str | None = None, *extra: str) -> list[str]:
    """The command line of a foreground Den on a free loopback port."""
    command = [sys.executable, "-m", "runhouse", "den", "start", "--foreground"]
    command += ["--port", "0", "--data-dir", str(data_dir)]
    if db_url:
        command += ["--db", db_url]
    return [*command, *extra]


def den_env(home: Path) -> dict[str, str]:
    """The environment of a Den child: no RH_* settings leaking in, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RH_")}
    env["HOME"] = str(home)
    return env


def start_den(
    data_dir: Path, db_url: str | None = None, extra: tuple[str, ...] = (), wait: bool = True
) -> DenServer:
    """Start a Den child; with ``wait``, return once /v1/health answers (else at once)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}.out"
    home = data_dir.parent / f"{data_dir.name}.home"
    home.mkdir(exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            den_command(data_dir, db_url, *extra),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=den_env(home),
        )
    server = DenServer(proc, data_dir, db_url or f"sqlite:///{data_dir / 'den.sqlite'}", log=log)
    if wait:
        try:
            wait_ready(server)
        except BaseException:
            server.stop()
            raise
    return server


def wait_ready(server: DenServer) -> None:
    """Poll until Den records where it listens and answers /v1/health, with a deadline."""
    info_file = server.data_dir / "den.json"
    deadline = time.monotonic() + READY_WITHIN
    while True:
        if server.proc.poll() is not None:
            pytest.fail(f"Den exited with {server.proc.returncode}:\n{server.output[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"Den did not answer within {READY_WITHIN} s:\n{server.output[-3000:]}")
        info = _read_json(info_file)
        if info and info.get("pid") == server.pid:
            server.url = str(info["url"])
            if info.get("tls_cert"):
                server.cafile = str(info["tls_cert"])
            with contextlib.suppress(OSError):
                if server.request("GET", "/v1/health").status == 200:
                    break
        time.sleep(0.02)  # between polls of a condition, not a wait for readiness
    token_file = server.data_dir / "admin_token"
    if token_file.exists():
        server.admin_token = token_file.read_text().strip()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@pytest.fixture(scope="session")
def den_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DenServer]:
    """A Den on SQLite for the session."""
    server = start_den(tmp_path_factory.mktemp("den-sqlite") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def den_postgres(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DenServer]:
    """A Den on a database of its own on the session's PostgreSQL."""
    from tests.postgres_server import fresh_database

    with fresh_database(postgres_url) as db_url:
        server = start_den(tmp_path_factory.mktemp("den-postgres") / "data", db_url)
        yield server
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def den(request: pytest.FixtureRequest) -> DenServer:
    """Each Den test runs twice: on SQLite and on PostgreSQL (session Dens, shared)."""
    name = "den_sqlite" if request.param == "sqlite" else "den_postgres"
    server: DenServer = request.getfixturevalue(name)
    return server
