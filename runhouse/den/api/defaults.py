"""Defaults: settings kept on Den for a user, and for groups (set in ``api/groups.py``).

    GET /v1/defaults            the caller's own: {"defaults", "sources"}
    GET /v1/defaults?merged=1   what applies to the caller, and where each key comes from
    PUT /v1/defaults            replace the caller's own

Merging, key by key (a shallow merge: a key's value is taken whole from one place):

1. The caller's own defaults win over everything ("sources": ``"user"``).
2. Then the groups the caller was added to directly, and every group above them ("a member
   of /acme/ml/vision gets /acme/ml's and /acme's defaults too"). A member of /acme is not
   given /acme/ml's defaults: roles flow down the group tree, defaults flow up it.
3. Among groups, the deepest wins (/acme/ml over /acme); between groups of one depth (two
   unrelated groups), the path that sorts first wins. ``"sources"`` names the group
   (``"/acme/ml"``).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from runhouse.den import paths
from runhouse.den.api.deps import Ctx
from runhouse.den.db.models import Group, Membership, User
from runhouse.den.errors import RESPONSES, unauthenticated

MAX_BYTES = 64 * 1024  # of one set of defaults, as JSON
MAX_KEY = 100  # characters of one key
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")  # a settings key (runhouse.config)
router = APIRouter(tags=["defaults"], responses=RESPONSES)


class DefaultsRequest(BaseModel):
    """Defaults to store: settings keys (lowercase letters, digits, "_") to JSON values."""

    defaults: dict[str, Any]

    @field_validator("defaults")
    @classmethod
    def _storable(cls, defaults: dict[str, Any]) -> dict[str, Any]:
        return check(defaults)


class DefaultsOut(BaseModel):
    """Defaults, and where each key comes from ("user", or a group such as "/acme/ml")."""

    defaults: dict[str, Any]
    sources: dict[str, str] = Field(default_factory=dict)


class GroupDefaultsOut(BaseModel):
    """A group's defaults, as stored."""

    defaults: dict[str, Any]


def check(defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` if they can be stored (raises ValueError, a 422, naming the problem)."""
    bad = sorted(k for k in defaults if len(k) > MAX_KEY or not _KEY.match(k))
    if bad:
        raise ValueError(
            f"keys must be settings keys (lowercase letters, digits and '_', starting with a "
            f"letter, at most {MAX_KEY} characters), not {', '.join(map(repr, bad[:5]))}"
        )
    try:
        size = len(json.dumps(defaults, allow_nan=False).encode())
    except ValueError:
        raise ValueError("the defaults hold NaN or Infinity, which JSON cannot") from None
    if size > MAX_BYTES:
        raise ValueError(f"the defaults are {size} bytes as JSON; at most {MAX_BYTES}")
    return defaults


def merge(own: dict[str, Any], groups: dict[str, dict[str, Any]]) -> DefaultsOut:
    """The caller's own defaults over their groups' (by group path, "acme/ml"), by the rules
    in the module notes."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    # Lowest precedence first, so that each later one overwrites: the shallowest groups, and
    # among one depth the path that sorts last (a stable sort by depth of a reversed sort).
    for path in sorted(sorted(groups, reverse=True), key=lambda p: p.count("/")):
        for key, value in groups[path].items():
            merged[key] = value
            sources[key] = "/" + path
    for key, value in own.items():
        merged[key] = value
        sources[key] = "user"
    return DefaultsOut(defaults=dict(sorted(merged.items())), sources=dict(sorted(sources.items())))


def _groups_of(session: Session, user_id: int) -> dict[str, dict[str, Any]]:
    """The defaults of the user's groups (direct memberships and every group above them)."""
    direct = session.scalars(
        select(Group.path)
        .join(Membership, Membership.group_id == Group.id)
        .where(Membership.user_id == user_id)
    )
    wanted: set[str] = set()
    for path in direct:
        wanted.update(paths.prefixes(tuple(path.split("/"))))
    if not wanted:
        return {}
    rows = session.execute(select(Group.path, Group.defaults).where(Group.path.in_(wanted)))
    return {path: dict(defaults) for path, defaults in rows if defaults}


@router.get("/v1/defaults", response_model=DefaultsOut)
def show(ctx: Ctx, merged: Annotated[bool, Query()] = False) -> DefaultsOut:
    """The caller's own defaults, or (``merged``) what applies to them from their groups too."""
    with ctx.open() as (session, access):
        user_id = access.identity.user_id
        if user_id is None:
            raise unauthenticated("log in to read your defaults: send 'Authorization: Bearer'")
        own = session.scalar(select(User.defaults).where(User.id == user_id)) or {}
        groups = _groups_of(session, user_id) if merged else {}
    return merge(dict(own), groups)


@router.put("/v1/defaults", response_model=DefaultsOut)
def replace(body: DefaultsRequest, ctx: Ctx) -> DefaultsOut:
    """Replace the caller's own defaults (``{}`` clears them)."""
    keys = sorted(body.defaults)
    with ctx.write("defaults.set", None, keys=keys) as (session, access, event):
        user_id = access.identity.user_id
        if user_id is None:
            raise unauthenticated("log in to store your defaults: send 'Authorization: Bearer'")
        event.target = access.caller.username
        user = session.get(User, user_id)
        assert user is not None  # the token's user, found a moment ago in this transaction
        user.defaults = body.defaults or None
        event.commit()
    return merge(body.defaults, {})
