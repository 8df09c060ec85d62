"""Starting Den (each test starts its own): the first admin, a corrupt or missing database,
addresses it refuses, TLS, the background start with status and stop, one Den per folder,
the migrations matching the models, and the migrations shipping in the wheel."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.den_servers import DenServer, den_command, den_env, start_den

RUNHOUSE = [sys.executable, "-m", "runhouse"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """No URL (Den's default SQLite file), or a fresh PostgreSQL database of this test's."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("fresh_postgres_db")


def run_den(data_dir: Path, *extra: str, db_url: str | None = None) -> subprocess.CompletedProcess:
    """A foreground start expected to fail at once (it never serves)."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        den_command(data_dir, db_url, *extra),
        capture_output=True,
        text=True,
        timeout=60,
        env=den_env(data_dir.parent),
    )


def test_first_start_makes_the_admin_once(tmp_path: Path, db_url: str | None) -> None:
    data = tmp_path / "den"
    first = start_den(data, db_url)
    try:
        token = (data / "admin_token").read_text().strip()
        assert stat.S_IMODE((data / "admin_token").stat().st_mode) == 0o600
        assert first.output.count(token) == 1
        assert "shown only this once" in first.output
        who = first.request("GET", "/v1/whoami", token=token).body
        assert who == {"username": "admin", "admin": True, "groups": []}
        made = first.request("POST", "/v1/users", {"username": "ana"}, token=token)
        assert made.status == 200
    finally:
        assert first.stop() == 0
    assert not (data / "den.json").exists()
    first_output = first.output
    second = start_den(data, db_url)
    try:
        printed = second.output[len(first_output) :]
        assert "token" not in printed and "rhd_" not in printed
        assert (data / "admin_token").read_text().strip() == token
        users = second.request("GET", "/v1/users", token=token).body["users"]
        assert [(u["username"], u["admin"]) for u in users] == [("admin", True), ("ana", False)]
    finally:
        second.stop()


def test_a_corrupt_database_stops_the_start(tmp_path: Path) -> None:
    data = tmp_path / "den"
    data.mkdir()
    (data / "den.sqlite").write_bytes(b"this is not a database at all" * 100)
    done = run_den(data)
    assert done.returncode == 1
    assert f"{data / 'den.sqlite'} is not a SQLite database" in done.stderr
    assert "restore it from a backup" in done.stderr
    assert not (data / "admin_token").exists()
    assert not (data / "den.json").exists()


def test_a_damaged_sqlite_file_stops_the_start(tmp_path: Path) -> None:
    data = tmp_path / "den"
    start_den(data).stop()
    database = data / "den.sqlite"
    content = bytearray(database.read_bytes())
    content[100:4096] = b"\xff" * (4096 - 100)  # the schema page, behind a valid header
    database.write_bytes(bytes(content))
    done = run_den(data)
    assert done.returncode == 1
    assert f"cannot open Den's database {database}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_lost_database_is_not_replaced_by_an_empty_one(tmp_path: Path) -> None:
    data = tmp_path / "den"
    start_den(data).stop()
    (data / "den.sqlite").unlink()
    done = run_den(data)
    assert done.returncode == 1
    assert f"{data / 'den.sqlite'} is missing" in done.stderr
    assert "admin_token" in done.stderr
    assert not (data / "den.sqlite").exists()


def test_an_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    from tests.sshd import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    done = run_den(tmp_path / "den", db_url=url)
    assert done.returncode == 1
    assert "cannot open Den's database postgresql+psycopg://postgres@127.0.0.1" in done.stderr
    assert "Check that the server runs" in done.stderr


def test_refuses_a_public_address_without_tls(tmp_path: Path) -> None:
    done = run_den(tmp_path / "den", "--host", "0.0.0.0")
    assert done.returncode == 2
    assert "refusing to serve Den on 0.0.0.0 without TLS" in done.stderr
    assert "--tls" in done.stderr and "--insecure" in done.stderr
    assert not (tmp_path / "den" / "admin_token").exists()
    background = subprocess.run(
        [*RUNHOUSE, "den", "start", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "den2")],
        capture_output=True,
        text=True,
        timeout=60,
        env=den_env(tmp_path),
    )
    assert background.returncode == 2
    assert "without TLS" in background.stderr


def test_tls_serves_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    den = start_den(tmp_path / "den", extra=("--tls",))
    try:
        assert den.url.startswith("https://")
        assert den.cafile and Path(den.cafile).is_file()
        assert den.request("GET", "/v1/health").status == 200
        assert den.request("GET", "/v1/whoami", token=den.admin_token).status == 200
    finally:
        den.stop()


def test_one_den_per_data_folder(tmp_path: Path) -> None:
    den = start_den(tmp_path / "den")
    try:
        done = run_den(tmp_path / "den")
        assert done.returncode == 3
        assert "already serves" in done.stderr
        assert str(den.pid) in done.stderr
    finally:
        den.stop()


def test_background_start_status_and_stop(tmp_path: Path) -> None:
    data = tmp_path / "den"
    env = den_env(tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "runhouse", "den", *args, "--data-dir", str(data)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    started = cli("start", "--port", "0")
    try:
        assert started.returncode == 0, started.stderr
        token = (data / "admin_token").read_text().strip()
        assert token in started.stdout
        assert token not in (data / "den.log").read_text()
        status = cli("status")
        assert status.returncode == 0
        assert "http://127.0.0.1:" in status.stdout
        again = cli("start", "--port", "0")
        assert "already runs" in again.stdout
        url = status.stdout.split()[3]
        users = subprocess.run(
            [*RUNHOUSE, "den", "user", "add", "ana", "--den-url", url, "--token", token],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert users.returncode == 0, users.stderr
        assert "rhd_" in users.stdout
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0
    assert "Stopped Den" in stopped.stdout
    assert cli("status").returncode == 1
    assert "No Den was serving" in cli("stop").stdout


def test_migrations_build_exactly_the_models(tmp_path: Path, db_url: str | None) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from runhouse.den.db import migrate
    from runhouse.den.db.models import Base
    from runhouse.den.db.session import Database

    db = Database(db_url or f"sqlite:///{tmp_path / 'den.sqlite'}")
    try:
        assert migrate.current(db) is None
        migrate.upgrade(db)
        assert migrate.current(db) == migrate.head()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        migrate.upgrade(db)  # a second upgrade does nothing
    finally:
        db.close()


def test_the_wheel_ships_the_migrations(tmp_path: Path) -> None:
    from runhouse.client.hosts import build_wheel
    from runhouse.den.db import migrate

    wheel, _ = build_wheel()
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    assert "runhouse/den/db/migrations/env.py" in names
    assert "runhouse/den/db/migrations/versions/0001_initial.py" in names
    code = (
        "import runhouse.den.db.migrate as m, sys; "
        "from runhouse.den.db.session import Database; "
        "assert m.__file__.startswith(sys.argv[1]), m.__file__; "
        "db = Database('sqlite:///' + sys.argv[2]); m.upgrade(db); print(m.current(db))"
    )
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(unpacked), str(tmp_path / "x.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == migrate.head()  # every migration shipped, up to the newest


def test_stopping_a_den_leaves_no_pid_file(tmp_path: Path) -> None:
    den: DenServer = start_den(tmp_path / "den")
    assert (tmp_path / "den" / "den.json").exists()
    assert den.stop() == 0
    assert not (tmp_path / "den" / "den.json").exists()
