"""Tokens: made, hashed and resolved. A token looks like ``rhd_<prefix>_<secret>``; Den keeps
its sha256 and its 8-character prefix (to name it in lists and revoke it), never the token.

    >>> made = new_token()
    >>> made.token.startswith(f"rhd_{made.prefix}_")
    True
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from runhouse.den.cache import FactCache, TokenRow
from runhouse.den.db.models import Token, User, now
from runhouse.den.db.session import ticket
from runhouse.den.errors import ApiError
from runhouse.den.permissions import Caller

# Built once: every request runs it, and building a statement costs more than running it.
# Its columns are TokenRow's fields, in order.
_BY_HASH = (
    select(
        Token.prefix,
        User.id.label("user_id"),
        User.username,
        User.admin,
        Token.expires_at,
        Token.revoked_at,
    )
    .join(User, Token.user_id == User.id)
    .where(Token.hash == bindparam("hash"))
)
PREFIX_LENGTH = 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SCHEME = "bearer "
_SHAPE = re.compile(r"rhd_([a-z0-9]{8})_")
ANONYMOUS = Caller(None, token="none")


@dataclass(frozen=True)
class NewToken:
    """A token just made: the token itself (shown once), its prefix and its hash."""

    token: str
    prefix: str
    hash: str


@dataclass(frozen=True)
class Identity:
    """The caller of a request, their user id and their token's prefix (None when anonymous)."""

    caller: Caller
    user_id: int | None = None
    prefix: str | None = None

    @property
    def username(self) -> str | None:
        """The caller's username, or None."""
        return self.caller.username


class TokenRejected(ApiError):
    """401 for an Authorization header that names no usable token: why (``malformed``,
    ``unknown``, ``revoked``, ``expired``), the token's prefix if it has a token's shape,
    and whose it was (revoked and expired tokens only). Never the token itself."""

    def __init__(
        self, message: str, reason: str, prefix: str | None = None, username: str | None = None
    ) -> None:
        super().__init__(401, "unauthenticated", message)
        self.reason = reason
        self.prefix = prefix
        self.username = username


def prefix_of(token: str) -> str | None:
    """The prefix of anything shaped like a token (``rhd_<prefix>_...``), else None."""
    shaped = _SHAPE.match(token)
    return shaped.group(1) if shaped else None


def is_prefix(text: str) -> bool:
    """Whether ``text`` has the shape of a token prefix."""
    return len(text) == PREFIX_LENGTH and all(c in _PREFIX_ALPHABET for c in text)


def hash_token(token: str) -> str:
    """The hex sha256 of a token: what Den stores and looks tokens up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> NewToken:
    """A fresh random token."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    token = f"rhd_{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(token, prefix, hash_token(token))


def issue(
    session: Session, user: User, name: str | None = None, expires_in_days: int | None = None
) -> tuple[NewToken, Token]:
    """Add a new token for ``user`` to the session (committed by the caller)."""
    made = new_token()
    expires = now() + timedelta(days=expires_in_days) if expires_in_days is not None else None
    row = Token(user_id=user.id, prefix=made.prefix, hash=made.hash, name=name, expires_at=expires)
    session.add(row)
    return made, row


def resolve(
    session: Session, authorization: str | None, cache: FactCache | None = None
) -> Identity:
    """The caller an ``Authorization`` header names; ``TokenRejected`` (401) for a token that
    cannot be used. The token's row comes from ``cache`` when it holds it."""
    if authorization is None:
        return Identity(ANONYMOUS)
    if not authorization[: len(_SCHEME)].lower() == _SCHEME:
        raise TokenRejected(
            "the Authorization header must be 'Bearer <token>'; log in again "
            "(runhouse login --token TOKEN) or send no header to act anonymously",
            "malformed",
        )
    token = authorization[len(_SCHEME) :].strip()
    digest = hash_token(token)
    row = cache.tokens.get(digest) if cache is not None else None
    if row is None:
        found = session.execute(_BY_HASH, {"hash": digest}).first()
        if found is None:
            raise TokenRejected(
                "the token is not known to this Den: check it, or log in again with a new one "
                "(a Den admin makes one with `runhouse den user add` or `runhouse den token "
                "create`)",
                "unknown",
                prefix_of(token),
            )
        row = TokenRow(*found)
        if cache is not None:
            cache.tokens.keep(digest, row, ticket(session, cache))
    if row.revoked_at is not None:
        raise TokenRejected(
            f"the token {row.prefix} was revoked on {_show(row.revoked_at)}: log in again with a "
            "new token (`runhouse den token create`, or ask a Den admin for one)",
            "revoked",
            row.prefix,
            row.username,
        )
    if row.expires_at is not None and row.expires_at <= datetime.now(timezone.utc):
        raise TokenRejected(
            f"the token {row.prefix} expired on {_show(row.expires_at)}: log in again with a new "
            "token (`runhouse den token create`, or ask a Den admin for one)",
            "expired",
            row.prefix,
            row.username,
        )
    return Identity(Caller(row.username, admin=row.admin), row.user_id, row.prefix)


def cached(cache: FactCache, authorization: str | None) -> Identity | None:
    """The caller, from the cache alone: None unless it holds the token and the token works
    (``resolve`` then gives the answer, an error included)."""
    if authorization is None:
        return Identity(ANONYMOUS)
    if authorization[: len(_SCHEME)].lower() != _SCHEME:
        return None
    row = cache.tokens.get(hash_token(authorization[len(_SCHEME) :].strip()))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= datetime.now(timezone.utc):
        return None
    return Identity(Caller(row.username, admin=row.admin), row.user_id, row.prefix)


def _show(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
