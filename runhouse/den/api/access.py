"""What the caller may do at a path: asked by cluster daemons that check callers against Den.

    GET /v1/access/{path}  -> {"username": "bob", "read": true, "write": false}

A daemon started with ``den_auth`` sends each caller's token here with its own cluster's
address (``/v1/access/acme/clusters/gpu``) and lets in callers with ``write``. The answer
comes from the one permission function (``permissions.decide``), as for every other route.

* A token is required: no header is 401 (a daemon always forwards one), and an unknown,
  revoked or expired token is 401 as everywhere.
* A path the caller cannot read answers ``read: false, write: false``, never 404: the
  daemon asks about its own cluster's address, and the answer is the same whether or not
  anything is saved there, so it reveals nothing a save (``PUT``) would not.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from runhouse.den import paths
from runhouse.den.access import resource_row, target_of
from runhouse.den.api.deps import Ctx
from runhouse.den.errors import RESPONSES, unauthenticated

router = APIRouter(tags=["access"], responses=RESPONSES)


class AccessOut(BaseModel):
    """The caller, and whether they may read and write the path."""

    username: str
    read: bool
    write: bool


@router.get("/v1/access/{path:path}", response_model=AccessOut)
def access(path: str, ctx: Ctx) -> AccessOut:
    """The caller's read and write access to ``path`` (saved or not)."""
    parts = paths.parse(path)
    with ctx.open() as (session, access):
        username = access.caller.username
        if username is None:
            raise unauthenticated(
                "asking for access needs a token: send 'Authorization: Bearer <token>' "
                "(the token whose access you want to know)"
            )
        target = target_of(parts, resource_row(session, ctx.db.cache, paths.key(parts)))
        facts = access.facts(parts)
        return AccessOut(
            username=username,
            read=access.decide("read", target, facts).allowed,
            write=access.decide("write", target, facts).allowed,
        )
