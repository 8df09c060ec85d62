"""Resources, their history, and folder listings.

    PUT    /v1/resources/{path}           save a new version
    GET    /v1/resources/{path}[?version] the newest version (or version N)
    DELETE /v1/resources/{path}           delete every version
    GET    /v1/history/{path}[?limit]     versions, newest first
    GET    /v1/folders/{path}             direct children the caller may list

Versions are allocated by one upsert on the resource's row, under its lock
(``db/versions.py``), so concurrent saves get consecutive numbers and none is lost. A load
of the current version is answered from the cache (``den/cache.py``) on the event loop when
it holds the token, the facts and the answer; otherwise from the database, in the thread
pool, which fills the cache.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Integer, and_, bindparam, delete, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from runhouse.den import paths
from runhouse.den.access import (
    Access,
    cached_facts,
    grants_by_path,
    raise_for,
    relevant,
    resource_row,
    target_of,
    to_grant,
)
from runhouse.den.api.deps import Context, Ctx
from runhouse.den.cache import ResourceRow
from runhouse.den.db import versions
from runhouse.den.db.models import Grant, Group, Resource, ResourceVersion, now
from runhouse.den.db.session import TOUCHES, ticket
from runhouse.den.errors import RESPONSES, ApiError, bad_request, conflict, forbidden, not_found
from runhouse.den.permissions import Facts, Path, Target, Visibility, decide

MAX_VERSION = 2**31 - 1  # the version column is a 32-bit integer
MAX_TYPE = 200  # characters of a resource_type (its column's size)
router = APIRouter(tags=["resources"], responses=RESPONSES)


class SaveRequest(BaseModel):
    """A new version's config, and the conditions to save it under."""

    config: dict[str, Any]
    overwrite: bool = True
    expected_version: int | None = Field(
        default=None,
        ge=0,
        le=MAX_VERSION,
        description="save only if this is the current version (0: new)",
    )

    @field_validator("config")
    @classmethod
    def _storable(cls, config: dict[str, Any]) -> dict[str, Any]:
        # Python's JSON reader takes NaN and Infinity, which JSON (and PostgreSQL) do not.
        try:
            json.dumps(config, allow_nan=False)
        except ValueError:
            raise ValueError("the config holds NaN or Infinity, which JSON cannot") from None
        rtype = config.get("resource_type")
        if isinstance(rtype, str) and len(rtype) > MAX_TYPE:
            raise ValueError(f"resource_type is over {MAX_TYPE} characters")
        return config


class Saved(BaseModel):
    """The version a save made."""

    version: int
    timestamp: str
    author: str


class ResourceOut(BaseModel):
    """One version of a resource, with the resource's owner and visibility."""

    config: dict[str, Any]
    version: int
    timestamp: str
    author: str
    owner: str | None
    visibility: Visibility


class VersionOut(BaseModel):
    """One entry of a resource's history."""

    version: int
    timestamp: str
    author: str
    config: dict[str, Any]


class History(BaseModel):
    """A resource's versions, newest first."""

    versions: list[VersionOut]


class Deleted(BaseModel):
    """Whether anything was deleted."""

    deleted: bool


class Entry(BaseModel):
    """One child of a folder: a resource, or a folder (its name ends with "/")."""

    name: str
    address: str
    kind: Literal["resource", "folder"]
    resource_type: str | None = None
    version: int | None = None


class Listing(BaseModel):
    """A folder's direct children, sorted by name."""

    entries: list[Entry]


_JSON = "application/json"
# A load in one query, built once: the resource and the asked version (default: current).
_LOAD = (
    select(
        Resource.id,
        Resource.owner,
        Resource.visibility,
        Resource.current_version,
        ResourceVersion.version,
        ResourceVersion.config,
        ResourceVersion.author,
        ResourceVersion.timestamp,
    )
    .outerjoin(
        ResourceVersion,
        and_(
            ResourceVersion.resource_id == Resource.id,
            ResourceVersion.version
            == func.coalesce(bindparam("version", type_=Integer), Resource.current_version),
        ),
    )
    .where(Resource.path == bindparam("path"))
)


def _missing(path: Path) -> ApiError:
    # The same answer whether nothing is there or the caller may not see it.
    return not_found(
        f"nothing is saved at {paths.show(path)} that you can read: check the address, "
        "or ask its owner to share it with you"
    )


def _resource(session: Session, path: Path) -> Resource | None:
    found = session.scalar(select(Resource).where(Resource.path == paths.key(path)))
    return found if found is None or found.current_version > 0 else None


def _stamp(row: ResourceVersion) -> str:
    return row.timestamp.isoformat(timespec="microseconds")


@router.put("/v1/resources/{path:path}", response_model=Saved)
def save(path: str, body: SaveRequest, ctx: Ctx) -> Saved:
    """Save ``config`` as the next version of the resource at ``path``."""
    parts = paths.parse(path)
    if len(parts) < 2:
        raise bad_request(
            f"{paths.show(parts)} is a folder (a username or group): save resources inside it, "
            f"as {paths.show((*parts, 'name'))}"
        )
    key = paths.key(parts)
    with ctx.write("resource.save", paths.show(parts), autocommit=True) as (
        session,
        access,
        event,
    ):
        existing = resource_row(session, ctx.db.cache, key)
        decision = access.decide("write", target_of(parts, existing))
        if decision.outcome == "forbidden" and not _top_exists(session, access, parts[0]):
            raise forbidden(
                f"/{parts[0]} is neither your folder (/{access.caller.username}) nor a group: "
                f"save under /{access.caller.username}/..., or ask a Den admin to create the "
                f"group /{parts[0]} (`runhouse group create /{parts[0]}`) and add you to it"
            )
        raise_for(decision, _missing(parts))
        author = access.caller.username or ""
        new = versions.NewVersion(
            key, body.config, author, now(), body.overwrite, body.expected_version
        )
        version = versions.append(session, new, event)
        if version is None:
            raise _refused(parts, new, versions.current_version(session, key))
        return Saved(
            version=version, timestamp=new.stamp.isoformat(timespec="microseconds"), author=author
        )


def _refused(path: Path, new: versions.NewVersion, current: int) -> ApiError:
    """Why a save's conditions failed: the expected version is not the current one, or a
    version exists and overwrite is false."""
    expected = new.expected_version
    if (expected is None or expected == current) and current and not new.overwrite:
        return conflict(
            "exists",
            f"a resource is already saved at {paths.show(path)}; pass overwrite=True to "
            "save a new version of it, or choose another name",
        )
    have = f"version {current}" if current else "no version yet"
    return conflict(
        "version_conflict",
        f"{paths.show(path)} has {have}, not {new.expected_version}: someone saved "
        "it in between; load the current version, reapply your change, and save again",
        current_version=current or None,
    )


def _top_exists(session: Session, access: Access, top: str) -> bool:
    if top == access.caller.username:
        return True
    return session.scalar(select(Group.id).where(Group.path == top)) is not None


@router.get("/v1/resources/{path:path}", response_model=ResourceOut)
async def load(
    path: str, ctx: Ctx, version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None
) -> Response:
    """The newest version of the resource at ``path`` (or version ``version``)."""
    parts = paths.parse(path)
    if version is None:
        # Served here, on the event loop, when the cache knows everything the answer needs.
        known = _cached_load(ctx, parts)
        if known is not None:
            return known
    return await run_in_threadpool(_load, ctx, parts, version)


def _cached_load(ctx: Context, parts: Path) -> Response | None:
    identity = ctx.cached()
    if identity is None:
        return None
    cache = ctx.db.cache
    row = cache.resources.get(paths.key(parts))
    if row is None or row.body is None:
        return None
    facts = cached_facts(cache, identity, parts)
    if facts is None:
        return None
    target = target_of(parts, row)
    if not decide(identity.caller, "read", target, facts).allowed:
        return None  # the database path answers (404), as it would without the cache
    return Response(row.body, media_type=_JSON)


def _load(ctx: Context, parts: Path, version: int | None) -> Response:
    key = paths.key(parts)
    cache = ctx.db.cache
    with ctx.open() as (session, access):
        taken = ticket(session, cache)
        row = session.execute(_LOAD, {"path": key, "version": version}).first()
        if row is None or row.current_version == 0:
            raise _missing(parts)
        access.require("read", target_of(parts, row), _missing(parts))
        if row.version is None:
            numbers = list(
                session.scalars(
                    select(ResourceVersion.version)
                    .where(ResourceVersion.resource_id == row.id)
                    .order_by(ResourceVersion.version)
                )
            )
            raise not_found(
                f"{paths.show(parts)} has no version {version} (versions: "
                f"{numbers[0]}..{numbers[-1]}); load one of those",
                versions=numbers,
            )
    answer = _answer(row)
    if row.version == row.current_version:
        state = ResourceRow(row.id, row.owner, row.visibility, row.current_version, answer)
        cache.resources.keep(key, state, taken)
    return Response(answer, media_type=_JSON)


def _answer(row: Any) -> bytes:
    """A version's answer, as JSON (the one form both the cache and the database serve)."""
    return (
        ResourceOut(
            config=row.config,
            version=row.version,
            timestamp=row.timestamp.isoformat(timespec="microseconds"),
            author=row.author,
            owner=row.owner,
            visibility=row.visibility,
        )
        .model_dump_json()
        .encode()
    )


@router.get("/v1/history/{path:path}", response_model=History)
def history(
    path: str, ctx: Ctx, limit: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None
) -> History:
    """The versions of the resource at ``path``, newest first (at most ``limit``)."""
    parts = paths.parse(path)
    with ctx.open() as (session, access):
        resource = _resource(session, parts)
        if resource is None:
            raise _missing(parts)
        access.require("read", target_of(parts, resource), _missing(parts))
        query = (
            select(ResourceVersion)
            .where(ResourceVersion.resource_id == resource.id)
            .order_by(ResourceVersion.version.desc())
            .limit(limit)
        )
        rows = session.scalars(query)
        return History(
            versions=[
                VersionOut(version=r.version, timestamp=_stamp(r), author=r.author, config=r.config)
                for r in rows
            ]
        )


@router.delete("/v1/resources/{path:path}", response_model=Deleted)
def remove(path: str, ctx: Ctx) -> Deleted:
    """Delete the resource at ``path`` and all its versions (needs write access)."""
    parts = paths.parse(path)
    with ctx.write("resource.delete", paths.show(parts)) as (session, access, event):
        resource = _resource(session, parts)
        raise_for(access.decide("write", target_of(parts, resource)), _missing(parts))
        if resource is None:
            event.commit(deleted=False)
            return Deleted(deleted=False)
        # Exactly this resource's rows: the cache forgets it alone.
        options = {TOUCHES: (("resource", paths.key(parts)),)}
        session.execute(
            delete(ResourceVersion).where(ResourceVersion.resource_id == resource.id),
            execution_options=options,
        )
        session.execute(
            delete(Resource).where(Resource.id == resource.id), execution_options=options
        )
        event.commit(deleted=True, versions=resource.current_version)
        return Deleted(deleted=True)


@router.get("/v1/folders", response_model=Listing, include_in_schema=False)
@router.get("/v1/folders/{path:path}", response_model=Listing)
def folder(ctx: Ctx, path: str = "") -> Listing:
    """The resources and sub-folders directly in ``path`` that the caller may list."""
    parts = paths.parse(path.rstrip("/"), allow_root=True)
    depth = len(parts)
    with ctx.open() as (session, access):
        rows = session.execute(
            select(
                Resource.path,
                Resource.owner,
                Resource.visibility,
                Resource.current_version,
                Resource.resource_type,
            )
            .where(paths.beneath(Resource.path, parts), Resource.current_version > 0)
            .order_by(Resource.path)
        ).all()
        grouped = grants_by_path(_grants_around(session, access, parts))
        memberships = access.memberships() if access.needs_facts else ()
        found: dict[tuple[str, int], Entry] = {}
        for key, owner, visibility, version, rtype in rows:
            child = tuple(key.split("/"))
            name = child[depth]
            is_folder = len(child) > depth + 1
            if (name, is_folder) in found:
                continue
            target = Target(child, owner=owner, visibility=visibility)  # type: ignore[arg-type]
            facts = Facts(relevant(grouped, child), memberships)
            if not access.decide("list", target, facts).allowed:
                continue
            address = paths.show((*parts, name))
            if is_folder:
                found[(name, 1)] = Entry(name=name + "/", address=address, kind="folder")
            else:
                found[(name, 0)] = Entry(
                    name=name,
                    address=address,
                    kind="resource",
                    resource_type=rtype,
                    version=version,
                )
        return Listing(entries=[found[k] for k in sorted(found)])


def _grants_around(session: Session, access: Access, folder: Path) -> list[Any]:
    # Every grant that can matter to something in the folder: on the folder, above it, or
    # beneath it. None are needed for a Den admin or an anonymous caller.
    if not access.needs_facts:
        return []
    condition = paths.beneath(Grant.path, folder)
    if folder:
        condition = condition | Grant.path.in_(paths.prefixes(folder))
    rows = session.execute(select(Grant.path, Grant.principal, Grant.access).where(condition))
    return [to_grant(*row) for row in rows]
