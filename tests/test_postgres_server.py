"""The PostgreSQL fixtures (tests/postgres_server.py) give real, isolated databases and
leave no server behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.postgres_server import conninfo, fresh_database

REPO = Path(__file__).resolve().parents[1]


def test_a_table_round_trips(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TEMPORARY TABLE notes (id int, body text)"))
            conn.execute(sa.text("INSERT INTO notes VALUES (1, 'héllo')"))
            rows = conn.execute(sa.text("SELECT id, body FROM notes")).all()
            version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "héllo")]
    assert int(version) >= 130000  # DROP DATABASE ... WITH (FORCE) needs 13


def test_fresh_databases_are_isolated(postgres_url: str, fresh_postgres_db: str) -> None:
    first = sa.create_engine(fresh_postgres_db)
    with fresh_database(postgres_url) as other_url:
        assert other_url != fresh_postgres_db
        second = sa.create_engine(other_url)
        try:
            with first.begin() as conn:
                conn.execute(sa.text("CREATE TABLE items (name text)"))
                conn.execute(sa.text("INSERT INTO items VALUES ('only in the first')"))
            with second.connect() as conn:
                assert not sa.inspect(conn).has_table("items")
            with first.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM items")).scalar_one() == 1
        finally:
            second.dispose()
    first.dispose()
    assert other_url.rsplit("/", 1)[1] not in _databases(postgres_url)


def test_a_database_is_dropped_even_with_a_connection_open(postgres_url: str) -> None:
    import psycopg

    with fresh_database(postgres_url) as url:
        name = url.rsplit("/", 1)[1]
        assert name in _databases(postgres_url)
        left_open = psycopg.connect(conninfo(url))
    # the drop (on leaving the block) ended that connection instead of waiting for it
    assert name not in _databases(postgres_url)
    with pytest.raises(psycopg.OperationalError):
        left_open.execute("SELECT 1")
    left_open.close()


def _databases(postgres_url: str) -> set[str]:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


INNER_TEST = """
import json, os

def test_report(postgres_server):
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postgres_server.pid:
                children.append(int(entry))
    report = {"pid": postgres_server.pid, "children": children, "root": str(postgres_server.root)}
    open(REPORT, "w").write(json.dumps(report))
"""


def test_no_server_is_left_after_a_session(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    inner = tmp_path / "test_inner.py"
    inner.write_text(f"REPORT = {str(report)!r}\n{INNER_TEST}")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tests.postgres_server", str(inner)]
    done = subprocess.run(
        command,
        cwd=REPO,  # so that the plugin imports as tests.postgres_server
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(report.read_text())
    assert found["children"], "the postmaster had no children to check"
    for pid in [found["pid"], *found["children"]]:
        assert not _alive(pid), f"postgres process {pid} outlived its session"
    assert not os.path.exists(found["root"])


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie counts: nobody reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
