"""Den's tables, as SQLAlchemy 2 typed declarative models.

Paths are stored without the leading "/" ("acme/ml/x"), in a column that compares bytewise
(collation "C" on PostgreSQL, SQLite's default BINARY), so that a range query
``path > "acme/" AND path < "acme0"`` is exactly "everything beneath /acme" and uses the index.
Principals are "alice" (a user) or "/acme/ml" (a group), as in the contract. Authors and
owners are usernames, kept as text so that a version's author survives the user's removal.

Migrations: every change here needs a new file in ``migrations/versions`` (the schema is
built by migrations only; a test compares the two).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

USERNAME = 128
PATH = 2048


def path_type() -> String:
    """A path column's type: bytewise comparison on every database (see the module notes)."""
    return String(PATH).with_variant(String(PATH, collation="C"), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, stored naive (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store as naive UTC."""
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Base of Den's tables."""


class User(Base):
    """A person (or robot) who logs in with tokens; ``admin`` is a Den admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME), unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    # The user's own defaults (settings), null when none were uploaded.
    defaults: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Token(Base):
    """A login token: only its sha256 and its prefix are kept, never the token."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Group(Base):
    """A group, by path ("acme", "acme/ml"); a subgroup's parent is the group above it."""

    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(path_type(), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    # Settings the group's members get (null: none set).
    defaults: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Membership(Base):
    """A user's role in a group (reader, writer, admin); it holds in the subgroups too."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))


class Resource(Base):
    """A saved name: its owner, visibility and newest version (with that version's type)."""

    __tablename__ = "resources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(path_type(), unique=True)
    owner: Mapped[str | None] = mapped_column(String(USERNAME))
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    resource_type: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class ResourceVersion(Base):
    """One saved version of a resource: number, config, author, time. Never changed."""

    __tablename__ = "resource_versions"
    __table_args__ = (UniqueConstraint("resource_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(USERNAME))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Grant(Base):
    """Access ("read", "write", "deny") on a path and everything beneath, to a principal."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("path", "principal"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(path_type())  # indexed first in the unique pair
    principal: Mapped[str] = mapped_column(String(PATH + 1), index=True)
    access: Mapped[str] = mapped_column(String(8))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class AuditEvent(Base):
    """One entry of the audit log: who did what to which target, when, from where, and how
    it ended ("ok", "denied", "failed"). ``detail`` never holds a secret or a token (a
    token's prefix at most). Actors are usernames, kept as text (as authors are)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, index=True)
    actor: Mapped[str | None] = mapped_column(String(USERNAME), index=True)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(PATH + 1))
    outcome: Mapped[str] = mapped_column(String(8))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    remote: Mapped[str | None] = mapped_column(String(64))


class SecretValue(Base):
    """The values of one version of a secret (a resource), sealed (``den/crypto.py``): the
    ciphertext, its nonce, the data key wrapped by the master key ``key_id``. Never in clear.
    Deleting the resource deletes them."""

    __tablename__ = "secret_values"
    __table_args__ = (UniqueConstraint("resource_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
