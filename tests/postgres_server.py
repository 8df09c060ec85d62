"""A real PostgreSQL for tests, started once per session. Registered in ``tests/conftest.py``.

Fixtures:
    postgres_server    (session)  the running server: ``.url``, ``.port``, ``.pid``, ``.root``
    postgres_url       (session)  "postgresql+psycopg://postgres@127.0.0.1:PORT/postgres"
    fresh_postgres_db  (function) the URL of a new, empty database, dropped after the test

What running it on this machine taught (Debian 12, PostgreSQL 15, tests run as root):

- PostgreSQL refuses to run as root: initdb and postgres run as the ``postgres`` account
  (``subprocess`` ``user=``, ``group=``, ``extra_groups=[]``). Its folder is made under the
  system temporary folder, not pytest's (``/tmp/pytest-of-root`` is root's alone), and
  handed to that account.
- The binaries are on PATH only when someone linked them there; Debian keeps them in
  ``/usr/lib/postgresql/VERSION/bin``, which is searched too.
- ``initdb --auth=trust --no-sync`` takes about 0.4 s; ``postgres -k SOCKDIR`` (the default
  socket folder does not exist) with ``fsync=off`` accepts connections within 0.1 s.
  SIGINT is its "fast shutdown": the children exit with it.
- A new database per test (``CREATE DATABASE``, a copy of template1) takes about 0.1 s, and
  ``DROP DATABASE ... WITH (FORCE)`` ends the connections a test left open.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.processes import stop_child
from tests.sshd import free_port

INSTALL_HINT = "scripts/system-packages :postgresql (scripts/test runs it)"
READY_WITHIN = 30.0  # seconds the server may take to accept connections (it takes ~0.1)
STOP_WITHIN = 30.0  # seconds a fast shutdown may take before SIGKILL
URL_SCHEME = "postgresql+psycopg://"


@dataclass
class PostgresServer:
    """One running postmaster, reached over TCP on loopback as the ``postgres`` superuser."""

    port: int
    proc: subprocess.Popen[bytes]
    root: Path  # holds data/, sock/ and postgres.log; removed at the end
    seconds_to_ready: float

    @property
    def pid(self) -> int:
        """The postmaster's PID (its children exit when it does)."""
        return self.proc.pid

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The SQLAlchemy URL of database ``name`` on this server."""
        return f"{URL_SCHEME}postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server by its PID (SIGINT, then SIGKILL after a deadline); remove its files."""
        stop_child(self.proc, STOP_WITHIN)
        shutil.rmtree(self.root)


def conninfo(url: str) -> str:
    """A psycopg connection string from a SQLAlchemy URL."""
    return "postgresql://" + url.removeprefix(URL_SCHEME)


def find_binaries() -> tuple[str, str] | None:
    """``initdb`` and ``postgres``: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb and postgres:
        return initdb, postgres
    folders = glob.glob("/usr/lib/postgresql/*/bin")
    for folder in sorted(folders, key=lambda f: _version(Path(f).parent.name), reverse=True):
        initdb, postgres = f"{folder}/initdb", f"{folder}/postgres"
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return initdb, postgres
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _account() -> dict[str, Any]:
    """The subprocess arguments that run a command as the ``postgres`` account when we
    are root (PostgreSQL refuses root), or nothing when we are not."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(f"no 'postgres' account to run PostgreSQL as: {INSTALL_HINT}")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _make_root(account: dict[str, Any]) -> Path:
    """A folder the server's account owns, under a temporary folder it can reach."""
    root = Path(tempfile.mkdtemp(prefix="rh-postgres-"))
    if account:
        os.chown(root, account["user"], account["group"])
        for parent in root.parents:
            if not parent.stat().st_mode & 0o001:
                shutil.rmtree(root)
                pytest.fail(
                    f"the postgres account cannot reach {root} ({parent} is closed to others): "
                    "set TMPDIR to a folder every user can traverse"
                )
    return root


def start_postgres(attempts: int = 3) -> PostgresServer:
    """initdb a new cluster and start its postmaster as a child on a free loopback port."""
    binaries = find_binaries()
    if binaries is None:
        pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}")
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: scripts/setup dev installs it")
    initdb, postgres = binaries
    account = _account()
    root = _make_root(account)
    data, sock, log = root / "data", root / "sock", root / "postgres.log"
    try:
        sock.mkdir()
        if account:
            os.chown(sock, account["user"], account["group"])
        command = [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        command += ["--locale=C", "--no-sync"]  # C: whatever locales the machine has
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=root,
            timeout=120,
            **account,
        )
        if done.returncode != 0:
            pytest.fail(f"initdb failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
        for _ in range(attempts):  # another process may take the free port before postgres
            server = _start(postgres, root, data, sock, log, account)
            if server is not None:
                return server
        pytest.fail(f"postgres did not start:\n{log.read_text(errors='replace')[-3000:]}")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _start(
    postgres: str, root: Path, data: Path, sock: Path, log: Path, account: dict[str, Any]
) -> PostgresServer | None:
    """Start the postmaster and wait for a connection; None if the port was taken."""
    import psycopg

    port = free_port()
    command = [postgres, "-D", str(data), "-p", str(port), "-k", str(sock)]
    command += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            **account,
        )
    server = PostgresServer(port, proc, root, 0.0)
    while True:
        try:
            psycopg.connect(conninfo(server.url), connect_timeout=2).close()
            server.seconds_to_ready = time.monotonic() - started
            return server
        except psycopg.OperationalError:
            pass
        if proc.poll() is not None:
            if "already in use" in log.read_text(errors="replace"):
                return None
            pytest.fail(f"postgres exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() - started > READY_WITHIN:
            proc.kill()
            proc.wait(10)
            pytest.fail(f"postgres was not ready in {READY_WITHIN} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)  # between connection attempts, not a wait for readiness


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server at ``server_url``; its URL; dropped after."""
    import psycopg
    from psycopg import sql

    name = f"rh_test_{secrets.token_hex(6)}"
    with psycopg.connect(conninfo(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(conninfo(server_url), autocommit=True) as conn:
            # FORCE: a connection the test left open must not keep the database alive.
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session (skipped, with the install command, if missing)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session server's ``postgres`` database as a SQLAlchemy URL (shared by tests)."""
    return postgres_server.url


@pytest.fixture
def fresh_postgres_db(postgres_url: str) -> Iterator[str]:
    """A new database for this test alone, as a SQLAlchemy URL; dropped (FORCE) after it."""
    with fresh_database(postgres_url) as url:
        yield url
