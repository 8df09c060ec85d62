"""Groups, nested to any depth ("acme", "acme/ml", ...), and their members' roles.

    PUT    /v1/groups/{path}          create (a Den admin for a top-level group, an admin of
                                      the parent group for a subgroup)
    GET    /v1/groups/{path}          members, inherited ones included (members and Den admins)
    DELETE /v1/groups/{path}          delete it and its subgroups (as for creating)
    PUT    /v1/group-members/{path}   give a user a role (admin of the group)
    DELETE /v1/group-members/{path}   take it away
    PUT    /v1/group-defaults/{path}  replace the group's defaults (admin of the group);
                                      how they merge for members: ``api/defaults.py``

A member of /acme is a member of /acme/ml too, with the highest of the roles given on the
way down; "via" names the group a member's role comes from.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from runhouse.den import paths
from runhouse.den.access import Access
from runhouse.den.api.defaults import DefaultsRequest, GroupDefaultsOut
from runhouse.den.api.deps import Ctx
from runhouse.den.db.models import Grant, Group, Membership, Resource, User, now
from runhouse.den.errors import RESPONSES, ApiError, conflict, forbidden, not_found, unauthenticated
from runhouse.den.permissions import ROLE_LEVELS, Path, Role, Target

router = APIRouter(tags=["groups"], responses=RESPONSES)


class GroupPath(BaseModel):
    """A group, by path ("acme/ml")."""

    path: str


class Member(BaseModel):
    """A member's role in the group, and the group it was given in."""

    username: str
    role: Role
    via: str


class GroupOut(BaseModel):
    """A group's members (inherited ones included) and its defaults."""

    path: str
    members: list[Member]
    defaults: dict[str, Any] = Field(default_factory=dict)


class GroupDeleted(BaseModel):
    """Whether the group existed."""

    deleted: bool


class MemberRequest(BaseModel):
    """A user's role to set in the group."""

    username: str = Field(min_length=1, max_length=128)
    role: Role


class MemberOut(BaseModel):
    """The role set."""

    username: str
    role: Role


class MemberRemoved(BaseModel):
    """Whether the user was a (direct) member."""

    removed: bool


def _missing(path: Path) -> ApiError:
    return not_found(
        f"no group {paths.show(path)} that you belong to: check the name, or ask one of its "
        "admins to add you"
    )


def _group(session: Session, path: Path) -> Group | None:
    return session.scalar(select(Group).where(Group.path == paths.key(path)))


def _manage(access: Access, path: Path, what: str) -> None:
    """Check the caller may create or delete the group at ``path``."""
    if access.caller.username is None:
        raise unauthenticated(f"log in to {what} a group")
    if len(path) == 1 and not access.caller.admin:
        raise forbidden(f"only a Den admin may {what} a top-level group such as /{path[0]}")
    access.require("admin", Target(path[:-1] or path), _missing(path))


@router.put("/v1/groups/{path:path}", response_model=GroupPath)
def create(path: str, ctx: Ctx) -> GroupPath:
    """Create the group at ``path``; a subgroup's parent must exist."""
    parts = paths.parse(path, "group")
    with ctx.write("group.create", paths.show(parts)) as (session, access, event):
        _manage(access, parts, "create")
        parent = _group(session, parts[:-1]) if len(parts) > 1 else None
        if len(parts) > 1 and parent is None:
            raise not_found(f"no group {paths.show(parts[:-1])}: create it first")
        if len(parts) == 1 and session.scalar(select(User.id).where(User.username == parts[0])):
            raise conflict(
                "name_taken",
                f"{parts[0]!r} is a username, and the group would share the user's folder "
                f"/{parts[0]}: choose another name for the group",
            )
        if _group(session, parts) is not None:
            raise conflict("exists", f"the group {paths.show(parts)} exists already")
        session.add(
            Group(path=paths.key(parts), parent_id=parent.id if parent else None, created=now())
        )
        try:
            event.commit()
        except IntegrityError:
            raise conflict("exists", f"the group {paths.show(parts)} exists already") from None
    return GroupPath(path=paths.key(parts))


@router.get("/v1/groups/{path:path}", response_model=GroupOut)
def show(path: str, ctx: Ctx) -> GroupOut:
    """The group's members with their effective roles (Den admins and members only)."""
    parts = paths.parse(path, "group")
    with ctx.open() as (session, access):
        group = _group(session, parts)
        if group is None:
            raise _missing(parts)
        access.require("read", Target(parts), _missing(parts))
        defaults = dict(group.defaults or {})
        rows = session.execute(
            select(User.username, Membership.role, Group.path)
            .join(Membership, Membership.user_id == User.id)
            .join(Group, Group.id == Membership.group_id)
            .where(Group.path.in_(paths.prefixes(parts)))
        ).all()
    best: dict[str, tuple[int, int, str, str]] = {}
    for username, role, via in rows:
        # The highest role wins; between equal roles, the nearest group names it.
        rank = (ROLE_LEVELS[role], via.count("/"), role, via)
        if username not in best or rank > best[username]:
            best[username] = rank
    members = [
        Member(username=u, role=rank[2], via=rank[3])  # type: ignore[arg-type]
        for u, rank in sorted(best.items())
    ]
    return GroupOut(path=paths.key(parts), members=members, defaults=defaults)


@router.delete("/v1/groups/{path:path}", response_model=GroupDeleted)
def remove(path: str, ctx: Ctx) -> GroupDeleted:
    """Delete the group and its subgroups, with their memberships and the grants to them.
    Refused while resources are saved beneath it (a later group of that name would get them)."""
    parts = paths.parse(path, "group")
    with ctx.write("group.delete", paths.show(parts)) as (session, access, event):
        _manage(access, parts, "delete")
        group = _group(session, parts)
        if group is None:
            event.commit(deleted=False)
            return GroupDeleted(deleted=False)
        saved = session.scalar(
            select(Resource.path).where(paths.beneath(Resource.path, parts)).limit(1)
        )
        if saved is not None:
            raise conflict(
                "exists",
                f"resources are saved under {paths.show(parts)} (such as /{saved}): delete or "
                "move them first",
            )
        ids = list(session.scalars(select(Group.id).where(paths.at_or_beneath(Group.path, parts))))
        shown = paths.show(parts)
        session.execute(delete(Membership).where(Membership.group_id.in_(ids)))
        session.execute(
            delete(Grant).where(
                or_(
                    Grant.principal == shown,
                    Grant.principal.startswith(shown + "/", autoescape=True),
                )
            )
        )
        # Deepest first, so that no subgroup outlives its parent even without cascades.
        for group_id in sorted(ids, reverse=True):
            session.execute(delete(Group).where(Group.id == group_id))
        event.commit(deleted=True, groups=len(ids))
    return GroupDeleted(deleted=True)


@router.put("/v1/group-members/{path:path}", response_model=MemberOut)
def set_member(path: str, body: MemberRequest, ctx: Ctx) -> MemberOut:
    """Give ``username`` ``role`` in the group (replacing a role given there before)."""
    parts = paths.parse(path, "group")
    username = paths.username(body.username)
    with ctx.write("member.set", paths.show(parts), username=username, role=body.role) as (
        session,
        access,
        event,
    ):
        access.require("admin", Target(parts), _missing(parts))
        group = _group(session, parts)
        if group is None:
            raise not_found(f"no group {paths.show(parts)}: create it first")
        user_id = session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            raise not_found(f"no user {body.username!r}; a Den admin adds users")
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        session.execute(
            insert(Membership)
            .values(group_id=group.id, user_id=user_id, role=body.role)
            .on_conflict_do_update(index_elements=["group_id", "user_id"], set_={"role": body.role})
        )
        event.commit()
    return MemberOut(username=body.username, role=body.role)


@router.delete("/v1/group-members/{path:path}", response_model=MemberRemoved)
def remove_member(
    path: str, ctx: Ctx, username: Annotated[str, Query(min_length=1, max_length=128)]
) -> MemberRemoved:
    """Take ``username``'s role in the group away (roles from groups above it stay)."""
    parts = paths.parse(path, "group")
    name = paths.username(username)
    with ctx.write("member.remove", paths.show(parts), username=name) as (session, access, event):
        access.require("admin", Target(parts), _missing(parts))
        group = _group(session, parts)
        user_id = session.scalar(select(User.id).where(User.username == name))
        if group is None or user_id is None:
            event.commit(removed=False)
            return MemberRemoved(removed=False)
        result = session.execute(
            delete(Membership).where(Membership.group_id == group.id, Membership.user_id == user_id)
        )
        removed = bool(result.rowcount)  # type: ignore[attr-defined]
        event.commit(removed=removed)
    return MemberRemoved(removed=removed)


@router.put("/v1/group-defaults/{path:path}", response_model=GroupDefaultsOut)
def set_defaults(path: str, body: DefaultsRequest, ctx: Ctx) -> GroupDefaultsOut:
    """Replace the group's defaults (``{}`` clears them): settings its members get unless
    they set their own (admin of the group)."""
    parts = paths.parse(path, "group")
    keys = sorted(body.defaults)
    with ctx.write("group_defaults.set", paths.show(parts), keys=keys) as (session, access, event):
        access.require("admin", Target(parts), _missing(parts))
        group = _group(session, parts)
        if group is None:
            raise not_found(f"no group {paths.show(parts)}: create it first")
        group.defaults = body.defaults or None
        event.commit()
    return GroupDefaultsOut(defaults=body.defaults)
