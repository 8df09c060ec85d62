"""What every route gets: a ``Context`` that opens one session for the request and
resolves its caller on it (one query, the token joined with its user, unless the cache
knows the token). Writes open it with ``ctx.write(action, target)``, which records them in
the audit log (``den/audit.py``); a token that cannot be used is recorded wherever it is
presented.

The context is built in an ``async`` dependency that does no I/O, so a route costs one hop
to the thread pool (the route itself), not one per dependency.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from runhouse.den import audit, auth
from runhouse.den.access import Access
from runhouse.den.db.session import Database

# Declares the scheme in the OpenAPI schema; the header itself is read (and judged) by auth.
_bearer = HTTPBearer(auto_error=False, description="a Den token: rhd_<prefix>_<secret>")


class Context:
    """One request's database, credentials, and where it comes from (the socket peer)."""

    def __init__(
        self,
        db: Database,
        authorization: str | None,
        remote: str | None = None,
        request: str = "",
    ) -> None:
        self.db = db
        self.authorization = authorization
        self.remote = remote
        self.request = request  # "METHOD /path", for the audit log

    @contextlib.contextmanager
    def open(self) -> Iterator[tuple[Session, Access]]:
        """A reading session and the caller's access. Routes that write use ``write``, so
        that no change escapes the audit log."""
        with self._identified(False) as (session, identity):
            yield session, Access(session, identity, self.db.cache)

    @contextlib.contextmanager
    def write(
        self, action: str, target: str | None, autocommit: bool = False, **detail: Any
    ) -> Iterator[tuple[Session, Access, audit.Event]]:
        """A writing session (SQLite's write lock taken first) whose outcome goes to the
        audit log. The route commits with ``event.commit(**more_detail)``, which records
        the event in the same transaction (a route that returns without committing changed
        nothing, and is recorded as ok all the same); an error is recorded as denied or
        failed, in a transaction of its own, once the write's is rolled back.

        ``autocommit`` (PostgreSQL): the route writes with one statement, which records the
        event too and sets ``event.recorded``; the session runs without BEGIN and COMMIT.
        On SQLite the session is the usual writing transaction."""
        event = audit.Event(action, target, self.remote, dict(detail))
        try:
            with self._identified(True, autocommit) as (session, identity):
                event.actor = identity.username
                if identity.prefix:
                    event.detail["token"] = identity.prefix
                event.session = session
                yield session, Access(session, identity, self.db.cache), event
                if not event.recorded:
                    event.commit()
        except auth.TokenRejected:
            raise  # recorded once, as a token that failed (by _identified)
        except Exception as exc:
            if not event.recorded:
                audit.record_failure(self.db, event, exc)
            raise

    def record(self, action: str, target: str | None, actor: str | None, **detail: Any) -> None:
        """Record an event that is not a write (a login), in a transaction of its own."""
        audit.record(self.db, audit.Event(action, target, self.remote, detail, actor), "ok")

    def cached(self) -> auth.Identity | None:
        """The caller from the cache alone (None: not there, or its token does not work)."""
        return auth.cached(self.db.cache, self.authorization)

    @contextlib.contextmanager
    def _identified(
        self, write: bool, autocommit: bool = False
    ) -> Iterator[tuple[Session, auth.Identity]]:
        rejected: auth.TokenRejected | None = None
        with self.db.session(write, autocommit) as session:
            try:
                identity = auth.resolve(session, self.authorization, self.db.cache)
            except auth.TokenRejected as exc:
                rejected = exc
            else:
                yield session, identity
        if rejected is not None:
            # Recorded after the session closed: a SQLite writer holds the only write lock.
            audit.record_rejected(self.db, rejected, self.remote, self.request)
            raise rejected


async def _context(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Context:
    # The socket peer: uvicorn runs with proxy_headers off, so no header can rewrite it.
    remote = request.client.host if request.client else None
    return Context(
        request.app.state.db,
        request.headers.get("authorization"),
        remote,
        f"{request.method} {request.url.path}",
    )


Ctx = Annotated[Context, Depends(_context)]
