"""Sharing: grants on a resource or folder, and a resource's visibility. Both need "admin"
on the path (its owner, the owner of the folder, a group admin, or a Den admin).

    POST   /v1/grants/{path}       give principals read, write or deny
    DELETE /v1/grants/{path}       take grants away (all of them when principals is null)
    GET    /v1/grants/{path}       the grants on exactly this path
    PUT    /v1/visibility/{path}   private, unlisted or public
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from runhouse.den import paths
from runhouse.den.access import Access, target_of
from runhouse.den.api.deps import Ctx
from runhouse.den.db.models import Grant, Group, Resource, User, now
from runhouse.den.errors import RESPONSES, ApiError, not_found
from runhouse.den.permissions import Access as Level
from runhouse.den.permissions import Path, Visibility

router = APIRouter(tags=["sharing"], responses=RESPONSES)


class GrantRequest(BaseModel):
    """Who gets what: users ("alice") and groups ("/acme/ml")."""

    principals: list[str] = Field(min_length=1, max_length=1000)
    access: Level


class Added(BaseModel):
    """The principals whose grant was added or changed."""

    added: list[str]


class RevokeRequest(BaseModel):
    """Whose grants to remove; null removes every grant on the path."""

    principals: list[str] | None = Field(default=None, max_length=1000)


class Removed(BaseModel):
    """The principals whose grant was removed."""

    removed: list[str]


class GrantOut(BaseModel):
    """One grant on the path."""

    principal: str
    access: Level


class Grants(BaseModel):
    """The grants on exactly this path, by principal."""

    grants: list[GrantOut]


class VisibilityRequest(BaseModel):
    """A resource's new visibility."""

    visibility: Visibility


class VisibilityOut(BaseModel):
    """A resource's visibility."""

    visibility: Visibility


def _missing(path: Path) -> ApiError:
    return not_found(f"nothing is saved at {paths.show(path)} that you can read: check the address")


def _admin_on(session: Session, access: Access, path: Path) -> Resource | None:
    """The resource at ``path`` (if any), after checking the caller has "admin" on it."""
    resource = session.scalar(select(Resource).where(Resource.path == paths.key(path)))
    if resource is not None and resource.current_version == 0:
        resource = None
    access.require("admin", target_of(path, resource), _missing(path))
    return resource


def _principal(text: str) -> str:
    """A checked principal: "alice", or "/acme/ml" (a trailing "/" is dropped); else 400."""
    if text.startswith("/"):
        return paths.show(paths.parse(text.rstrip("/"), "group"))
    return paths.username(text)


def _check_principals(session: Session, principals: list[str]) -> None:
    users = {p for p in principals if not p.startswith("/")}
    groups = {p[1:] for p in principals if p.startswith("/")}
    known_users = set(session.scalars(select(User.username).where(User.username.in_(users))))
    known_groups = set(session.scalars(select(Group.path).where(Group.path.in_(groups))))
    unknown = sorted(users - known_users) + sorted("/" + g for g in groups - known_groups)
    if unknown:
        raise not_found(
            f"no such user or group: {', '.join(unknown)}; users are added by a Den admin "
            "(`runhouse den user add NAME`), groups with `runhouse group create /NAME`",
            unknown=unknown,
        )


@router.post("/v1/grants/{path:path}", response_model=Added)
def share(path: str, body: GrantRequest, ctx: Ctx) -> Added:
    """Give ``principals`` ``access`` on ``path`` and everything beneath it."""
    parts = paths.parse(path)
    principals = list(dict.fromkeys(_principal(p) for p in body.principals))
    with ctx.write("grant.add", paths.show(parts), principals=principals, access=body.access) as (
        session,
        access,
        event,
    ):
        _admin_on(session, access, parts)
        _check_principals(session, principals)
        bind = session.get_bind()
        insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
        for principal in principals:
            statement = insert(Grant).values(
                path=paths.key(parts), principal=principal, access=body.access, created=now()
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["path", "principal"], set_={"access": body.access}
                )
            )
        event.commit()
    return Added(added=principals)


@router.delete("/v1/grants/{path:path}", response_model=Removed)
def revoke(path: str, body: RevokeRequest, ctx: Ctx) -> Removed:
    """Remove the grants of ``principals`` (or every grant) on exactly ``path``."""
    parts = paths.parse(path)
    with ctx.write("grant.remove", paths.show(parts)) as (session, access, event):
        _admin_on(session, access, parts)
        query = select(Grant).where(Grant.path == paths.key(parts))
        if body.principals is not None:
            wanted = [_principal(p) for p in body.principals]
            query = query.where(Grant.principal.in_(wanted))
        rows = list(session.scalars(query))
        if rows:
            session.execute(delete(Grant).where(Grant.id.in_([r.id for r in rows])))
        event.commit(removed=sorted(r.principal for r in rows))
    return Removed(removed=sorted(r.principal for r in rows))


@router.get("/v1/grants/{path:path}", response_model=Grants)
def grants(path: str, ctx: Ctx) -> Grants:
    """The grants on exactly ``path`` (grants on folders above it apply too)."""
    parts = paths.parse(path)
    with ctx.open() as (session, access):
        _admin_on(session, access, parts)
        rows = session.execute(
            select(Grant.principal, Grant.access)
            .where(Grant.path == paths.key(parts))
            .order_by(Grant.principal)
        ).all()
    return Grants(grants=[GrantOut(principal=p, access=a) for p, a in rows])  # type: ignore[arg-type]


@router.put("/v1/visibility/{path:path}", response_model=VisibilityOut)
def visibility(path: str, body: VisibilityRequest, ctx: Ctx) -> VisibilityOut:
    """Set the visibility of the resource at ``path``."""
    parts = paths.parse(path)
    with ctx.write("visibility.set", paths.show(parts), visibility=body.visibility) as (
        session,
        access,
        event,
    ):
        resource = _admin_on(session, access, parts)
        if resource is None:
            raise not_found(
                f"nothing is saved at {paths.show(parts)}: visibility belongs to a resource, "
                "not a folder (share a folder with grants instead)"
            )
        event.detail["was"] = resource.visibility
        resource.visibility = body.visibility
        event.commit()
    return VisibilityOut(visibility=body.visibility)
