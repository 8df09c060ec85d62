"""Den itself.

GET    /v1/health  liveness and version, without a token (and without the database)
DELETE /v1/cache   forget every cached fact (Den admin): after the database was changed
                   behind Den's back (by hand, or restored from a backup) while Den ran
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from runhouse._version import __version__
from runhouse.den.api.deps import Ctx
from runhouse.den.errors import RESPONSES, forbidden, unauthenticated

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Den answers, and which runhouse it runs."""

    status: Literal["ok"]
    version: str


class Cleared(BaseModel):
    """Den forgot what it had cached."""

    cleared: bool


@router.get("/v1/health", response_model=Health)
async def health() -> Health:
    """Den is up."""
    return Health(status="ok", version=__version__)


@router.delete("/v1/cache", response_model=Cleared, responses=RESPONSES)
def clear_cache(ctx: Ctx) -> Cleared:
    """Forget every cached token, membership, grant and resource (Den admin): the next
    requests read them from the database. Only needed when the database was changed by
    something other than this Den."""
    with ctx.write("cache.clear", None) as (_session, access, event):
        if access.caller.username is None:
            raise unauthenticated("log in first: send 'Authorization: Bearer <token>'")
        if not access.caller.admin:
            raise forbidden("only a Den admin may clear Den's cache; ask one")
        ctx.db.cache.clear()
        event.commit()
    return Cleared(cleared=True)
