"""Engines and sessions: one ``Database`` per Den, one session per request.

SQLite serializes writers itself, but a deferred transaction that reads, then writes, can
fail with "database is locked" when another writer got in between. So a writing session
starts with ``BEGIN IMMEDIATE`` (the write lock first, waiting up to the busy timeout),
and reading sessions with a plain ``BEGIN`` (WAL mode lets them run beside a writer).
On PostgreSQL a writer locks the rows it changes (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

_WRITE = "den_write"
_BUSY_TIMEOUT = 30  # seconds a SQLite writer waits for the lock


class Database:
    """Den's database: an engine, and sessions for reading or for writing."""

    def __init__(self, url: str | URL) -> None:
        self.url = make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {}
        if self.sqlite:
            options["connect_args"] = {"timeout": _BUSY_TIMEOUT}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=False)
        self.engine: Engine = create_engine(self.url, **options)
        if self.sqlite:
            _configure_sqlite(self.engine)
        self._reads = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        writer = self.engine.execution_options(**{_WRITE: True})
        self._writes = sessionmaker(writer, expire_on_commit=False, autoflush=False)

    def session(self, write: bool = False) -> Session:
        """A new session; ``write`` takes SQLite's write lock when its transaction begins."""
        return self._writes() if write else self._reads()

    def describe(self) -> str:
        """The database for messages: the file for SQLite, the URL without password else."""
        if self.sqlite:
            return str(self.url.database or ":memory:")
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would issue its own deferred BEGIN; "begin" below issues ours instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
