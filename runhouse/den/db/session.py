"""Engines and sessions: one ``Database`` per Den, one session per request, and the facts
cache (``den/cache.py``) kept in step with what the sessions commit.

SQLite serializes writers itself, but a deferred transaction that reads, then writes, can
fail with "database is locked" when another writer got in between. So a writing session
starts with ``BEGIN IMMEDIATE`` (the write lock first, waiting up to the busy timeout),
and reading sessions with a plain ``BEGIN`` (WAL mode lets them run beside a writer).
On PostgreSQL a writer locks the rows it changes (``SELECT ... FOR UPDATE``); reading
sessions run without a transaction (each statement sees what was committed when it began,
as it would in a READ COMMITTED transaction), which saves the BEGIN and ROLLBACK round
trips. A writing session may ask for the same (``autocommit``) when it writes with one
statement, which is atomic by itself.

Every session holds the cache's ticket from when it was made, for the fills of what it
reads (``den/cache.py``), and records the tables it writes (``TOUCHED`` in
``session.info``): DML through ``session.execute`` (a statement may name exactly what it
changes with the execution option ``den_touches``; a text statement without it counts as
changing everything), and the unit of work's flushes. Once the session commits (for an
``autocommit`` session: once it ends, whatever happened), ``cache.committed`` drops what
those tables feed.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.dml import UpdateBase

from runhouse.den.cache import NO_FILL, FactCache

_WRITE = "den_write"
_BUSY_TIMEOUT = 30  # seconds a SQLite writer waits for the lock
THREADS = 16  # threads serving the routes that use the database (server.py)
TOUCHED = "den_touched"  # session.info: the tables (or resources) the session wrote
TOUCHES = "den_touches"  # execution option: what one statement writes, exactly
_TICKET = "den_ticket"  # session.info: the cache's ticket when the session was made
_EVERYTHING = "*"  # a statement Den cannot read (text): assume it wrote anything


class Database:
    """Den's database: an engine, sessions for reading or for writing, and the cache of
    the facts its sessions read most."""

    def __init__(self, url: str | URL) -> None:
        self.url = make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"
        self.cache = FactCache()
        options: dict[str, Any] = {}
        if self.sqlite:
            options["connect_args"] = {"timeout": _BUSY_TIMEOUT}
        else:
            # A connection for each thread that serves routes, and a few spare: a
            # connection past the pool's size is closed when returned, made anew next time.
            options.update(pool_size=THREADS, max_overflow=4, pool_pre_ping=False)
        self.engine: Engine = create_engine(self.url, **options)
        if self.sqlite:
            _configure_sqlite(self.engine)
            reads = self.engine
            autocommit_writes = None
        else:
            reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            autocommit_writes = reads
        writer = self.engine.execution_options(**{_WRITE: True})
        self._reads = self._factory(reads, autocommit=not self.sqlite)
        self._writes = self._factory(writer, autocommit=False)
        self._atomic_writes = (
            self._factory(autocommit_writes, autocommit=True)
            if autocommit_writes is not None
            else self._writes
        )

    def session(self, write: bool = False, autocommit: bool = False) -> Session:
        """A new session; ``write`` takes SQLite's write lock when its transaction begins.
        ``autocommit`` (PostgreSQL; ignored on SQLite) runs each statement on its own: for
        a write done in one statement."""
        if not write:
            session = self._reads()
        else:
            session = self._atomic_writes() if autocommit else self._writes()
        session.info[_TICKET] = self.cache.ticket()
        return session

    def describe(self) -> str:
        """The database for messages: the file for SQLite, the URL without password else."""
        if self.sqlite:
            return str(self.url.database or ":memory:")
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _factory(self, bind: Engine, autocommit: bool) -> sessionmaker[Session]:
        factory = sessionmaker(bind, expire_on_commit=False, autoflush=False)
        _track(factory, self.cache, autocommit)
        return factory


def ticket(session: Session, cache: FactCache) -> int:
    """The ticket for cache fills from what ``session`` reads: taken when it was made,
    before its first statement (a SQLite transaction reads one snapshot from then on). A
    session that wrote may read what it has not committed, and may yet roll back: it fills
    nothing."""
    if session.info.get(TOUCHED):
        return NO_FILL
    found = session.info.get(_TICKET)
    return cache.ticket() if found is None else int(found)


def touched(session: Session) -> set[Any]:
    """What ``session`` wrote so far (table names, ``("resource", path)`` marks)."""
    marks: set[Any] = session.info.setdefault(TOUCHED, set())
    return marks


def _track(factory: sessionmaker[Session], cache: FactCache, autocommit: bool) -> None:
    @event.listens_for(factory, "do_orm_execute")
    def on_execute(state: ORMExecuteState) -> None:
        exact = state.execution_options.get(TOUCHES)
        statement = state.statement
        if exact is not None:
            touched(state.session).update(exact)
        elif isinstance(statement, UpdateBase):
            table = getattr(statement, "table", None)
            touched(state.session).add(getattr(table, "name", _EVERYTHING))
        elif not state.is_select and not getattr(statement, "is_select", False):
            touched(state.session).add(_EVERYTHING)

    @event.listens_for(factory, "after_flush")
    def on_flush(session: Session, _context: Any) -> None:
        marks = touched(session)
        for instance in chain(session.new, session.dirty, session.deleted):
            marks.add(instance.__table__.name)

    @event.listens_for(factory, "after_commit")
    def on_commit(session: Session) -> None:
        marks = session.info.pop(TOUCHED, None)
        if marks:
            cache.committed(marks)

    @event.listens_for(factory, "after_transaction_end")
    def on_end(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is not None:
            return
        marks = session.info.pop(TOUCHED, None)
        if marks and autocommit:
            cache.committed(marks)  # each statement committed as it ran


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
