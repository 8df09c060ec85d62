"""What every route gets: a ``Context`` that opens one session for the request and
resolves its caller on it (one query: the token joined with its user).

The context is built in an ``async`` dependency that does no I/O, so a route costs one hop
to the thread pool (the route itself), not one per dependency.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from runhouse.den import auth
from runhouse.den.access import Access
from runhouse.den.db.session import Database

# Declares the scheme in the OpenAPI schema; the header itself is read (and judged) by auth.
_bearer = HTTPBearer(auto_error=False, description="a Den token: rhd_<prefix>_<secret>")


class Context:
    """One request's database and credentials."""

    def __init__(self, db: Database, authorization: str | None) -> None:
        self.db = db
        self.authorization = authorization

    @contextlib.contextmanager
    def open(self, write: bool = False) -> Iterator[tuple[Session, Access]]:
        """A session (taking SQLite's write lock first if ``write``) and the caller's access.
        Nothing is committed unless the route commits."""
        with self.db.session(write) as session:
            identity = auth.resolve(session, self.authorization)
            yield session, Access(session, identity)


async def _context(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Context:
    return Context(request.app.state.db, request.headers.get("authorization"))


Ctx = Annotated[Context, Depends(_context)]
