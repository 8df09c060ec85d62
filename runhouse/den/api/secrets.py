"""Secrets' values, sealed at rest (``den/crypto.py``). A secret's config is a resource like
any other (``resources.py``); the values of its version N are kept beside it, under N.

    PUT    /v1/secret-values/{path}?version=N    the values of version N (write access)
    GET    /v1/secret-values/{path}[?version=N]  the values of version N, or of the newest
                                                 version that has values (read access)
    DELETE /v1/secret-values/{path}              every version's values (write access)

A version's values are set once (versions never change). Deleting the resource deletes its
values. Values are served to logged-in callers only, whatever the visibility, and every read
(allowed or not) is recorded in the audit log as ``secret.read``; an allowed read is recorded
before the values are sent, and one that cannot be recorded is not served. Values travel in
the PUT body and the GET answer only: never in a URL, an audit event, Den's log or an error.

A row that does not open (Den started with another master key, or the row was altered) is
answered 500 ``cannot_decrypt`` with a message naming the secret, the version and what to do;
Den goes on serving everything else.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from runhouse.den import audit, crypto, paths
from runhouse.den.access import raise_for, target_of
from runhouse.den.api.deps import Context, Ctx
from runhouse.den.db.models import Resource, SecretValue
from runhouse.den.errors import RESPONSES, ApiError, ErrorBody, conflict, not_found, unauthenticated
from runhouse.den.permissions import Path

log = logging.getLogger("runhouse.den")
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit integer
CANNOT_DECRYPT = "cannot_decrypt"
router = APIRouter(tags=["secrets"], responses=RESPONSES)
_UNDECRYPTABLE: dict[int | str, dict[str, Any]] = {
    500: {
        "model": ErrorBody,
        "description": "cannot_decrypt: the values were sealed with another master key, or "
        "their row was altered (the message names the secret and version)",
    }
}

Version = Annotated[int, Query(ge=1, le=MAX_VERSION, description="the secret's version")]


class ValuesIn(BaseModel):
    """The values of one version of a secret: names to strings."""

    values: dict[str, str]


class ValuesSaved(BaseModel):
    """The version whose values were kept."""

    version: int


class ValuesOut(BaseModel):
    """The values of one version of a secret."""

    version: int
    values: dict[str, str]


class ValuesDeleted(BaseModel):
    """Whether any version's values were deleted."""

    deleted: bool


def _missing(path: Path) -> ApiError:
    # The very answer resources.py gives: a secret one may not read does not exist.
    return not_found(
        f"nothing is saved at {paths.show(path)} that you can read: check the address, "
        "or ask its owner to share it with you"
    )


def _resource(session: Session, path: Path, lock: bool = False) -> Resource | None:
    query = select(Resource).where(Resource.path == paths.key(path), Resource.current_version > 0)
    if lock:  # PostgreSQL: wait for (and then see) a delete of the resource in progress
        query = query.with_for_update()
    return session.scalar(query)


@router.put("/v1/secret-values/{path:path}", response_model=ValuesSaved)
def put_values(
    path: str, body: ValuesIn, version: Version, ctx: Ctx, request: Request
) -> ValuesSaved:
    """Keep ``values`` (sealed) as those of version ``version`` of the secret at ``path``."""
    parts = paths.parse(path)
    keyring: crypto.Keyring = request.app.state.keyring
    with ctx.write("secret.write", paths.show(parts), version=version) as (
        session,
        access,
        event,
    ):
        resource = _resource(session, parts, lock=True)
        raise_for(access.decide("write", target_of(parts, resource)), _missing(parts))
        if resource is None:
            raise not_found(
                f"nothing is saved at {paths.show(parts)}: save the secret's config first "
                "(its values go with a version of it)"
            )
        if version > resource.current_version:
            raise not_found(
                f"{paths.show(parts)} has no version {version} (its newest is "
                f"{resource.current_version}): save the config first, then its values "
                "under the version that save made",
                versions=list(range(1, resource.current_version + 1)),
            )
        taken = session.scalar(
            select(SecretValue.id).where(
                SecretValue.resource_id == resource.id, SecretValue.version == version
            )
        )
        if taken is not None:
            raise conflict(
                "exists",
                f"version {version} of {paths.show(parts)} has its values already, and a "
                "version never changes: save the secret again to make a new version",
            )
        sealed = crypto.seal(keyring, paths.key(parts), version, body.values)
        session.add(
            SecretValue(
                resource_id=resource.id,
                version=version,
                ciphertext=sealed.ciphertext,
                nonce=sealed.nonce,
                wrapped_key=sealed.wrapped_key,
                key_id=sealed.key_id,
            )
        )
        event.commit(key_id=sealed.key_id, count=len(body.values))
    return ValuesSaved(version=version)


@router.get("/v1/secret-values/{path:path}", response_model=ValuesOut, responses=_UNDECRYPTABLE)
def get_values(
    path: str,
    ctx: Ctx,
    request: Request,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> ValuesOut:
    """The values of version ``version`` of the secret at ``path`` (default: the newest
    version that has values); recorded in the audit log."""
    parts = paths.parse(path)
    keyring: crypto.Keyring = request.app.state.keyring
    event = audit.Event("secret.read", paths.show(parts), ctx.remote, {"version": version})
    row: SecretValue | None = None
    with ctx.open() as (session, access):
        event.actor = access.caller.username
        if access.identity.prefix:
            event.detail["token"] = access.identity.prefix
        resource = None if event.actor is None else _resource(session, parts)
        decision = access.decide("read", target_of(parts, resource))
        if decision.allowed and resource is not None:
            query = select(SecretValue).where(SecretValue.resource_id == resource.id)
            if version is None:
                query = query.order_by(SecretValue.version.desc()).limit(1)
            else:
                query = query.where(SecretValue.version == version)
            row = session.scalar(query)
    # The read session is closed: recording takes SQLite's write lock.
    if event.actor is None:
        _refuse(
            ctx,
            event,
            unauthenticated(
                "secrets' values are served to logged-in users only, whatever their "
                "visibility: log in (`runhouse login --token TOKEN`)"
            ),
        )
    if not decision.allowed:
        try:
            raise_for(decision, _missing(parts))
        except ApiError as exc:
            _refuse(ctx, event, exc, "denied")
    if resource is None:
        _refuse(ctx, event, _missing(parts))
    if row is None:
        which = f"version {version}" if version is not None else "any version"
        _refuse(
            ctx,
            event,
            not_found(
                f"{paths.show(parts)} has no values for {which} on this Den: save the "
                "secret again (its values go with each save)"
            ),
        )
    event.detail["version"] = row.version
    sealed = crypto.Sealed(row.ciphertext, row.nonce, row.wrapped_key, row.key_id)
    try:
        values = crypto.open_sealed(keyring, paths.key(parts), row.version, sealed)
    except crypto.Undecryptable as exc:
        log.error("%s", exc)  # names the secret, version and key ids; never a value
        _refuse(ctx, event, ApiError(500, CANNOT_DECRYPT, str(exc)))
    _record_or_fail(ctx, event)
    return ValuesOut(version=row.version, values=values)


@router.delete("/v1/secret-values/{path:path}", response_model=ValuesDeleted)
def delete_values(path: str, ctx: Ctx) -> ValuesDeleted:
    """Delete the values of every version of the secret at ``path`` (its config stays)."""
    parts = paths.parse(path)
    with ctx.write("secret.delete", paths.show(parts)) as (session, access, event):
        resource = _resource(session, parts, lock=True)
        raise_for(access.decide("write", target_of(parts, resource)), _missing(parts))
        count = 0
        if resource is not None:
            result = session.execute(
                delete(SecretValue).where(SecretValue.resource_id == resource.id)
            )
            count = int(getattr(result, "rowcount", 0) or 0)
        event.commit(deleted=count > 0, versions=count)
    return ValuesDeleted(deleted=count > 0)


def _refuse(
    ctx: Context, event: audit.Event, error: ApiError, outcome: audit.Outcome | None = None
) -> NoReturn:
    """Record a read that is not served, with its answer, then raise that answer."""
    event.detail.update(status=error.status, error=error.code)
    audit.record(ctx.db, event, outcome or audit.outcome_of(error))
    raise error


def _record_or_fail(ctx: Context, event: audit.Event) -> None:
    """Record a served read; unlike ``audit.record``, a failure here is raised, so that
    values never leave Den unrecorded."""
    with ctx.db.session(write=True) as session:
        session.add(event.row("ok"))
        session.commit()
