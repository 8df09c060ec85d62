"""Loading the facts a permission decision needs, asking ``permissions.decide``, and turning
its answer into an HTTP error. Every read and write of Den goes through ``Access``.

Facts: the grants on the target's path and on every folder above it, and the caller's own
memberships (``decide`` extends them down the group tree). A Den admin and an anonymous
caller are decided without facts: the rules that settle them come before any fact. Both
kinds of fact come from the cache (``den/cache.py``) when it holds them, and fill it when
read from the database; ``cached_facts`` answers from the cache alone. So does the state of
the resource at the target (``resource_row``: its owner and visibility).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from runhouse.den import paths
from runhouse.den.auth import Identity
from runhouse.den.cache import FactCache, ResourceRow
from runhouse.den.db import models
from runhouse.den.db.session import ticket
from runhouse.den.errors import ApiError, forbidden, unauthenticated
from runhouse.den.permissions import (
    Action,
    Decision,
    Facts,
    Grant,
    Membership,
    Path,
    Target,
    Visibility,
    decide,
)

# Built once: every request of a logged-in user runs them.
_MEMBERSHIPS = (
    select(models.Group.path, models.Membership.role)
    .join(models.Membership, models.Membership.group_id == models.Group.id)
    .where(models.Membership.user_id == bindparam("user"))
)
# A resource's state, for a permission decision (every save runs it).
_STATE = select(
    models.Resource.id,
    models.Resource.owner,
    models.Resource.visibility,
    models.Resource.current_version,
).where(models.Resource.path == bindparam("path"))
_GRANTS_ON = select(models.Grant.path, models.Grant.principal, models.Grant.access).where(
    models.Grant.path.in_(bindparam("paths", expanding=True))
)


class Access:
    """One request's permission checks (memberships loaded once, on first need)."""

    def __init__(
        self, session: Session, identity: Identity, cache: FactCache | None = None
    ) -> None:
        self.session = session
        self.identity = identity
        self.caller = identity.caller
        self.cache = cache if cache is not None else FactCache()
        self._memberships: tuple[Membership, ...] | None = None

    @property
    def needs_facts(self) -> bool:
        """Whether decisions for this caller depend on grants and memberships."""
        return not (self.caller.admin or self.caller.username is None)

    def memberships(self) -> tuple[Membership, ...]:
        """The caller's own memberships (a subgroup's role comes from ``decide``'s prefix rule)."""
        if self._memberships is None:
            user_id = self.identity.user_id
            if user_id is None:
                self._memberships = ()
            else:
                found = self.cache.memberships.get(user_id)
                if found is None:
                    rows = self.session.execute(_MEMBERSHIPS, {"user": user_id}).all()
                    user = self.caller.username or ""
                    found = tuple(
                        Membership(tuple(path.split("/")), user, role)  # type: ignore[arg-type]
                        for path, role in rows
                    )
                    self.cache.memberships.keep(user_id, found, ticket(self.session, self.cache))
                self._memberships = found
        return self._memberships

    def grants_on(self, path: Path) -> tuple[Grant, ...]:
        """The grants on ``path`` and on every folder above it."""
        shelf = self.cache.grants
        keys = paths.prefixes(path)
        known = [shelf.get(key) for key in keys]
        loaded: dict[str, list[Grant]] = {
            key: [] for key, found in zip(keys, known, strict=True) if found is None
        }
        if loaded:
            for row in self.session.execute(_GRANTS_ON, {"paths": list(loaded)}):
                loaded[row.path].append(to_grant(*row))
            taken = ticket(self.session, self.cache)
            for key, grants in loaded.items():
                shelf.keep(key, tuple(grants), taken)
        every: list[Grant] = []
        for key, found in zip(keys, known, strict=True):
            every.extend(found if found is not None else loaded[key])
        return tuple(every)

    def facts(self, path: Path) -> Facts:
        """What ``decide`` needs about ``path`` for this caller."""
        if not self.needs_facts:
            return Facts()
        return Facts(self.grants_on(path), self.memberships())

    def decide(self, action: Action, target: Target, facts: Facts | None = None) -> Decision:
        """The decision for one action on one target."""
        return decide(
            self.caller, action, target, self.facts(target.path) if facts is None else facts
        )

    def require(self, action: Action, target: Target, hidden: ApiError) -> None:
        """Raise unless allowed: ``hidden`` (the very answer a missing target gets) where the
        decision is not_found, 403 where forbidden, 401 where the caller must log in."""
        raise_for(self.decide(action, target), hidden)


def resource_row(session: Session, cache: FactCache, key: str) -> ResourceRow | None:
    """The state of the resource saved at ``key`` (stored form), from the cache or the
    database; None if nothing is saved there."""
    found = cache.resources.get(key)
    if found is not None:
        return found
    row = session.execute(_STATE, {"path": key}).first()
    if row is None or row.current_version == 0:
        return None
    found = ResourceRow(row.id, row.owner, row.visibility, row.current_version)
    cache.resources.keep(key, found, ticket(session, cache))
    return found


def cached_facts(cache: FactCache, identity: Identity, path: Path) -> Facts | None:
    """The facts about ``path`` for ``identity`` from the cache alone, or None if it lacks one."""
    if identity.caller.admin or identity.user_id is None:
        return Facts()
    memberships = cache.memberships.get(identity.user_id)
    if memberships is None:
        return None
    grants: list[Grant] = []
    for key in paths.prefixes(path):
        found = cache.grants.get(key)
        if found is None:
            return None
        grants.extend(found)
    return Facts(tuple(grants), memberships)


def raise_for(decision: Decision, hidden: ApiError) -> None:
    """Turn a decision that is not "allow" into its HTTP error."""
    if decision.allowed:
        return
    if decision.outcome == "not_found":
        raise hidden
    if decision.outcome == "unauthenticated":
        raise unauthenticated(decision.reason)
    raise forbidden(decision.reason)


def to_grant(path: str, principal: str, access: str) -> Grant:
    """A grant row's values as the permission function's ``Grant``."""
    return Grant(tuple(path.split("/")), principal, access)  # type: ignore[arg-type]


class Saved(Protocol):
    """What a target needs of a saved resource (a row, a model, a cached state)."""

    @property
    def owner(self) -> str | None:
        """Who saved its first version."""

    @property
    def visibility(self) -> str:
        """private, unlisted or public."""


def target_of(path: Path, resource: Saved | None) -> Target:
    """The permission target for a path and the resource saved there (if any)."""
    if resource is None:
        return Target(path)
    visibility: Visibility = resource.visibility  # type: ignore[assignment]
    return Target(path, owner=resource.owner, visibility=visibility)


def grants_by_path(grants: Iterable[Grant]) -> dict[Path, list[Grant]]:
    """Grants grouped by the path they are on, to pick a resource's ancestors' grants."""
    grouped: dict[Path, list[Grant]] = {}
    for grant in grants:
        grouped.setdefault(grant.path, []).append(grant)
    return grouped


def relevant(grouped: dict[Path, list[Grant]], path: Path) -> tuple[Grant, ...]:
    """The grants among ``grouped`` on ``path`` or a folder above it."""
    found: list[Grant] = []
    for n in range(1, len(path) + 1):
        found.extend(grouped.get(path[:n], ()))
    return tuple(found)
