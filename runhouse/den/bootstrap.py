"""Opening Den's database at start: check it is one, migrate it, make the first admin.

A SQLite file that is not a database, a database file that went missing after Den had been
set up in this data folder, an unreachable server or a schema from a newer Den: each stops
the start with a message naming the database and what to do, never a silent empty Den.
"""

from __future__ import annotations

from pathlib import Path

from alembic.util import CommandError
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from runhouse.den import auth
from runhouse.den.db import migrate
from runhouse.den.db.models import User, now
from runhouse.den.db.session import Database
from runhouse.den.settings import DenSettings
from runhouse.exceptions import DenServerError
from runhouse.fileio import atomic_write

ADMIN = "admin"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_database(settings: DenSettings) -> Database:
    """The database the settings name, checked and migrated to the newest schema."""
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        raise DenServerError(
            f"--db {settings.database_url!r} is not a database URL; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        _check_sqlite_file(Path(url.database), settings)
    try:
        db = Database(url)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DenServerError(
            f"cannot use the database {url.render_as_string(hide_password=True)}: {exc}; "
            "install Den's extras (pip install 'runhouse[den]')"
        ) from None
    try:
        migrate.upgrade(db)
    except DBAPIError as exc:
        db.close()
        raise DenServerError(
            f"cannot open Den's database {db.describe()}: {exc.orig}. "
            + (
                "It is not a usable SQLite database: restore it from a backup, or start Den "
                "with another --db."
                if db.sqlite
                else "Check that the server runs, the database exists and the user may use it."
            )
        ) from None
    except CommandError as exc:
        db.close()
        raise DenServerError(
            f"Den's database {db.describe()} has a schema this Den does not know ({exc}): it "
            "was made by a newer runhouse; upgrade runhouse to serve it"
        ) from None
    return db


def _check_sqlite_file(path: Path, settings: DenSettings) -> None:
    if path.exists():
        if not path.is_file():
            raise DenServerError(f"Den's database {path} is not a file; give --db another path")
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        # An empty file is an empty database to SQLite (e.g. made by `touch`).
        if head and head != _SQLITE_MAGIC:
            raise DenServerError(
                f"Den's database {path} is not a SQLite database (it starts with {head[:16]!r}): "
                "restore it from a backup, or move it away to start an empty Den"
            )
        return
    token_file = settings.admin_token_file
    if settings.db_url is None and token_file.exists():
        raise DenServerError(
            f"Den's database {path} is missing, but Den was set up in {settings.data_dir} "
            f"before ({token_file} exists): restore the database from a backup; to start an "
            f"empty Den instead, remove {token_file}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DenServerError(f"cannot make the folder for Den's database {path}: {exc}") from None


def ensure_admin(db: Database, settings: DenSettings) -> str | None:
    """On a Den with no users, add the Den admin ``admin`` and keep its token in the data
    folder (mode 600); returns that token, or None when users exist already."""
    with db.session(write=True) as session:
        if session.scalar(select(User.id).limit(1)) is not None:
            return None
        user = User(username=ADMIN, admin=True, created=now())
        session.add(user)
        session.flush()
        made, _ = auth.issue(session, user, name="first admin token")
        # The file first: if the commit failed, the next start makes another admin and file.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(settings.admin_token_file, made.token + "\n", mode=0o600)
        session.commit()
    return made.token
