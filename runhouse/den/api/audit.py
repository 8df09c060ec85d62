"""The audit log, for Den admins (what goes in it: ``runhouse/den/audit.py``).

    GET /v1/audit?user=NAME&since=ISO&limit=N   events, newest first

``user`` keeps the events of one actor; ``since`` (ISO 8601; without a zone it is UTC) the
events at or after that moment; ``limit`` (default 100, at most 10000) cuts the list.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from runhouse.den.api.deps import Ctx
from runhouse.den.db.models import AuditEvent
from runhouse.den.errors import RESPONSES, bad_request, forbidden, unauthenticated

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
router = APIRouter(tags=["audit"], responses=RESPONSES)


class EventOut(BaseModel):
    """One event: who, what, when, from where, and how it ended."""

    id: int
    at: datetime
    actor: str | None
    action: str
    target: str | None
    outcome: Literal["ok", "denied", "failed"]
    detail: dict[str, Any]
    remote: str | None


class Events(BaseModel):
    """Events, newest first."""

    events: list[EventOut]


@router.get("/v1/audit", response_model=Events)
def events(
    ctx: Ctx,
    user: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; UTC if no zone")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Events:
    """The audit log's events, newest first (Den admin)."""
    with ctx.open() as (session, access):
        if access.caller.username is None:
            raise unauthenticated("log in as a Den admin to read the audit log")
        if not access.caller.admin:
            raise forbidden("only a Den admin may read the audit log; ask one")
        query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        if user is not None:
            query = query.where(AuditEvent.actor == user)
        if since is not None:
            query = query.where(AuditEvent.at >= _utc(since))
        rows = session.scalars(query.limit(limit)).all()
        return Events(
            events=[
                EventOut(
                    id=r.id,
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    outcome=r.outcome,  # type: ignore[arg-type]
                    detail=r.detail or {},
                    remote=r.remote,
                )
                for r in rows
            ]
        )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # year 1 at +14:00, say
        raise bad_request(f"since={moment.isoformat()} is not a moment in UTC's range") from None
