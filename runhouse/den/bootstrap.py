"""Opening Den's database at start: check it is one, migrate it, make the first admin, and
load (or at the first start make) the master key that seals secrets' values.

A SQLite file that is not a database, a database file that went missing after Den had been
set up in this data folder, an unreachable server or a schema from a newer Den: each stops
the start with a message naming the database and what to do, never a silent empty Den.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic.util import CommandError
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from runhouse.den import auth, crypto
from runhouse.den.db import migrate
from runhouse.den.db.models import SecretValue, User, now
from runhouse.den.db.session import Database
from runhouse.den.settings import DenSettings
from runhouse.exceptions import DenServerError
from runhouse.fileio import atomic_write

log = logging.getLogger("runhouse.den")
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


def master_keyring(settings: DenSettings, db: Database) -> crypto.Keyring:
    """The master key (made at the first start when Den keeps it in its data folder), and
    the new key of a rotation that did not finish, which opens what it already re-wrapped."""
    path = settings.master_key_path
    with db.session() as session:
        counts = dict(
            session.execute(
                select(SecretValue.key_id, func.count()).group_by(SecretValue.key_id)
            ).all()
        )
    if path.exists() or settings.master_key_file is not None:
        try:
            master = crypto.read_key_file(path)
        except DenServerError as exc:
            raise DenServerError(
                f"{exc}. Den needs the master key that sealed its secrets' values."
            ) from None
    elif counts:
        raise DenServerError(
            f"Den's master key file {path} is missing, but the database {db.describe()} holds "
            f"{sum(counts.values())} sealed secret values: restore the file from a backup, or "
            "give the key's file with --master-key-file"
        )
    else:
        master = crypto.new_key()
        crypto.write_key_file(path, master)
    pending = crypto.pending_path(path)
    keyring = crypto.Keyring(master, [crypto.read_key_file(pending)] if pending.exists() else [])
    foreign = {k: n for k, n in counts.items() if k not in keyring.keys}
    if foreign:
        # Den still serves: everything else works, and reading those says what is wrong.
        log.warning(
            "%d sealed secret values were sealed with master keys Den was not given (%s; "
            "Den has %s): reading them fails until Den starts with the key that sealed them",
            sum(foreign.values()),
            ", ".join(sorted(foreign)),
            ", ".join(sorted(keyring.keys)),
        )
    return keyring
