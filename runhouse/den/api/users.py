"""Users, tokens and identity.

GET    /v1/whoami              the caller: username, Den admin or not, groups
POST   /v1/users               add a user, with a first token (Den admin)
GET    /v1/users               every user (Den admin)
DELETE /v1/users/{username}    remove a user and their tokens (Den admin)
POST   /v1/tokens              a new token for yourself (or, as Den admin, for anyone)
GET    /v1/tokens              your tokens (prefixes only)
DELETE /v1/tokens/{prefix}     revoke one
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from runhouse.den import auth, paths
from runhouse.den.access import Access
from runhouse.den.api.deps import Ctx
from runhouse.den.db.models import Grant, Group, Membership, Token, User, now
from runhouse.den.errors import (
    RESPONSES,
    bad_request,
    conflict,
    forbidden,
    not_found,
    unauthenticated,
)

router = APIRouter(tags=["users"], responses=RESPONSES)


class WhoAmI(BaseModel):
    """The caller."""

    username: str
    admin: bool
    groups: list[str] = Field(description="groups the caller belongs to, subgroups included")


class NewUser(BaseModel):
    """A user to add."""

    username: str = Field(min_length=1, max_length=128)
    admin: bool = False


class UserCreated(BaseModel):
    """The user added and their first token (shown this once)."""

    username: str
    token: str


class UserOut(BaseModel):
    """One user."""

    username: str
    admin: bool
    created: datetime


class Users(BaseModel):
    """Every user, by name."""

    users: list[UserOut]


class UserDeleted(BaseModel):
    """Whether the user existed."""

    deleted: bool


class NewToken(BaseModel):
    """A token to make."""

    name: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    expires_in_days: int | None = Field(default=None, ge=1, le=36500)
    username: str | None = Field(default=None, description="Den admin only: for another user")


class TokenCreated(BaseModel):
    """The token made (shown this once) and how it will be listed."""

    token: str
    prefix: str
    name: str | None
    expires_at: datetime | None


class TokenOut(BaseModel):
    """One of the caller's tokens, without the token."""

    prefix: str
    name: str | None
    created: datetime
    expires_at: datetime | None
    revoked: bool


class Tokens(BaseModel):
    """The caller's tokens, oldest first."""

    tokens: list[TokenOut]


class Revoked(BaseModel):
    """The token is revoked."""

    revoked: bool


def _logged_in(access: Access) -> str:
    if access.caller.username is None:
        raise unauthenticated("log in first: send 'Authorization: Bearer <token>'")
    return access.caller.username


def _den_admin(access: Access, what: str) -> None:
    _logged_in(access)
    if not access.caller.admin:
        raise forbidden(f"only a Den admin may {what}; ask one (the user 'admin' is one)")


@router.get("/v1/whoami", response_model=WhoAmI)
def whoami(ctx: Ctx) -> WhoAmI:
    """Who the token belongs to, and their groups (a member of /acme is in /acme/ml too).
    This is how clients log in: each answer is a "login" in the audit log."""
    with ctx.open() as (session, access):
        username = _logged_in(access)
        direct = [m.group for m in access.memberships()]
        groups: set[str] = set()
        if direct:
            conditions = [paths.at_or_beneath(Group.path, group) for group in direct]
            groups.update(session.scalars(select(Group.path).where(or_(*conditions))))
        answer = WhoAmI(username=username, admin=access.caller.admin, groups=sorted(groups))
        prefix = access.identity.prefix
    ctx.record("login", username, username, token=prefix)
    return answer


@router.post("/v1/users", response_model=UserCreated)
def add_user(body: NewUser, ctx: Ctx) -> UserCreated:
    """Add a user (Den admin); answers their first token, shown only this once."""
    username = paths.username(body.username)
    with ctx.write("user.add", username, admin=body.admin) as (session, access, event):
        _den_admin(access, "add users")
        if session.scalar(select(Group.id).where(Group.path == username)) is not None:
            raise conflict(
                "name_taken",
                f"{username!r} is a top-level group, and a user's folder would share its "
                "address /" + username + ": choose another username",
            )
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise conflict("exists", f"the user {username!r} exists already")
        user = User(username=username, admin=body.admin, created=now())
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            raise conflict("exists", f"the user {username!r} exists already") from None
        made, _ = auth.issue(session, user, name="first token")
        event.commit(issued=made.prefix)
    return UserCreated(username=username, token=made.token)


@router.get("/v1/users", response_model=Users)
def list_users(ctx: Ctx) -> Users:
    """Every user (Den admin)."""
    with ctx.open() as (session, access):
        _den_admin(access, "list users")
        rows = session.scalars(select(User).order_by(User.username))
        return Users(
            users=[UserOut(username=u.username, admin=u.admin, created=u.created) for u in rows]
        )


@router.delete("/v1/users/{username}", response_model=UserDeleted)
def remove_user(username: str, ctx: Ctx) -> UserDeleted:
    """Remove a user (Den admin): their tokens, memberships and grants go too; what they
    saved stays (a Den admin may move or delete it)."""
    with ctx.write("user.remove", username) as (session, access, event):
        _den_admin(access, "remove users")
        if paths.username(username) == access.caller.username:
            raise bad_request("you cannot remove yourself; log in as another Den admin")
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            event.commit(deleted=False)
            return UserDeleted(deleted=False)
        session.execute(delete(Token).where(Token.user_id == user.id))
        session.execute(delete(Membership).where(Membership.user_id == user.id))
        session.execute(delete(Grant).where(Grant.principal == username))
        session.execute(delete(User).where(User.id == user.id))
        event.commit(deleted=True)
    return UserDeleted(deleted=True)


@router.post("/v1/tokens", response_model=TokenCreated)
def create_token(body: NewToken, ctx: Ctx) -> TokenCreated:
    """A new token for the caller (a Den admin may make one for another user)."""
    with ctx.write("token.create", None) as (session, access, event):
        me = _logged_in(access)
        username = paths.username(body.username) if body.username else me
        event.target = username
        if username != me and not access.caller.admin:
            raise forbidden("only a Den admin may make tokens for other users")
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise not_found(f"no user {username!r}; add it with `runhouse den user add`")
        made, row = auth.issue(session, user, body.name, body.expires_in_days)
        event.commit(issued=made.prefix, expires_in_days=body.expires_in_days)
        return TokenCreated(
            token=made.token, prefix=made.prefix, name=row.name, expires_at=row.expires_at
        )


@router.get("/v1/tokens", response_model=Tokens)
def list_tokens(ctx: Ctx) -> Tokens:
    """The caller's own tokens (prefixes, never the tokens)."""
    with ctx.open() as (session, access):
        _logged_in(access)
        rows = session.scalars(
            select(Token).where(Token.user_id == access.identity.user_id).order_by(Token.id)
        )
        return Tokens(
            tokens=[
                TokenOut(
                    prefix=t.prefix,
                    name=t.name,
                    created=t.created,
                    expires_at=t.expires_at,
                    revoked=t.revoked_at is not None,
                )
                for t in rows
            ]
        )


@router.delete("/v1/tokens/{prefix}", response_model=Revoked)
def revoke_token(prefix: str, ctx: Ctx) -> Revoked:
    """Revoke one of the caller's tokens (a Den admin may revoke anyone's)."""
    # Only a prefix is recorded: a whole token pasted here by mistake must not be.
    shown = prefix if auth.is_prefix(prefix) else None
    with ctx.write("token.revoke", None, revoked=shown) as (session, access, event):
        event.target = _logged_in(access)
        row = _own_token(session, access, prefix)
        owner = session.scalar(select(User.username).where(User.id == row.user_id))
        event.target = owner
        if row.revoked_at is None:
            row.revoked_at = now()
        event.commit()
    return Revoked(revoked=True)


def _own_token(session: Session, access: Access, prefix: str) -> Token:
    if not auth.is_prefix(prefix):
        raise not_found(
            f"{prefix!r} is not a token prefix (8 lowercase letters and digits, as in "
            "`runhouse den token list`)"
        )
    query = select(Token).where(Token.prefix == prefix)
    if not access.caller.admin:
        query = query.where(Token.user_id == access.identity.user_id)
    row = session.scalar(query)
    if row is None:
        raise not_found(
            f"none of your tokens has the prefix {prefix!r}; see `runhouse den token list`"
        )
    return row
