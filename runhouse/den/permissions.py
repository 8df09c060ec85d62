"""Who may do what in Den: one pure function of the caller, the action, the target and the
grant/membership facts. No I/O, no database, no clock: the server loads the facts and asks.

    >>> alice = Caller("alice")
    >>> decide(alice, "write", Target(("alice", "model")), Facts()).allowed
    True
    >>> decide(alice, "read", Target(("bob", "model")), Facts()).outcome
    'not_found'

The rules, in order (see the Den contract): a bad token is unauthenticated; a Den admin is
allowed; anonymous callers read and list public targets only; a deny grant (on the path or a
folder above, to the caller or a group they belong to) wins over every allow; otherwise the
highest level from the caller's own folder, ownership, group roles, grants and visibility
must reach the level the action needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Path = tuple[str, ...]
Access = Literal["read", "write", "deny"]
Role = Literal["reader", "writer", "admin"]
Action = Literal["list", "read", "write", "admin"]
TokenState = Literal["none", "valid", "unknown", "revoked", "expired"]
Outcome = Literal["allow", "not_found", "forbidden", "unauthenticated"]
Visibility = Literal["private", "unlisted", "public"]

# Levels, lowest first; an action needs the level named in NEEDED.
NONE, READ, WRITE, ADMIN = 0, 1, 2, 3
LEVEL_NAMES = {NONE: "no", READ: "read", WRITE: "write", ADMIN: "admin"}
NEEDED: dict[str, int] = {"list": READ, "read": READ, "write": WRITE, "admin": ADMIN}
ROLE_LEVELS: dict[str, int] = {"reader": READ, "writer": WRITE, "admin": ADMIN}
GRANT_LEVELS: dict[str, int] = {"read": READ, "write": WRITE}

_BAD_TOKENS: dict[str, str] = {
    "unknown": "the token is not known to this Den: check it, or log in again with a new one",
    "revoked": "the token was revoked: log in again with a new token (ask a Den admin for one)",
    "expired": "the token has expired: log in again with a new token (ask a Den admin for one)",
}


@dataclass(frozen=True)
class Caller:
    """Who asks: a username (None when anonymous), Den admin or not, and their token's state."""

    username: str | None
    admin: bool = False
    token: TokenState = "valid"


@dataclass(frozen=True)
class Grant:
    """Access given on a path (and everything beneath) to a user ("alice") or group ("/acme")."""

    path: Path
    principal: str
    access: Access


@dataclass(frozen=True)
class Membership:
    """A user's role in a group; it holds in every subgroup of it too."""

    group: Path
    username: str
    role: Role


@dataclass(frozen=True)
class Target:
    """What is acted on: a resource, a folder or a group, by its path."""

    path: Path
    owner: str | None = None
    visibility: Visibility = "private"


@dataclass(frozen=True)
class Facts:
    """The grants and memberships that may matter; extra ones are ignored."""

    grants: tuple[Grant, ...] = ()
    memberships: tuple[Membership, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The outcome, and why in words (shown in error messages)."""

    outcome: Outcome
    reason: str

    @property
    def allowed(self) -> bool:
        """Whether the action may go ahead."""
        return self.outcome == "allow"


def decide(caller: Caller, action: Action, target: Target, facts: Facts) -> Decision:
    """Whether ``caller`` may do ``action`` on ``target``, given ``facts``."""
    where = _show(target.path)
    if caller.token in _BAD_TOKENS:
        return Decision("unauthenticated", _BAD_TOKENS[caller.token])
    if caller.admin:
        return Decision("allow", f"{caller.username} is a Den admin")
    if caller.username is None or caller.token == "none":
        return _anonymous(action, target, where)
    user = caller.username
    groups = frozenset(m.group for m in facts.memberships if m.username == user and m.group)
    grants = [g for g in facts.grants if _is_prefix(g.path, target.path)]

    for grant in grants:
        if grant.access == "deny" and _applies(grant.principal, user, groups):
            reason = (
                f"{user} is denied {where} by a deny grant on {_show(grant.path)} "
                f"to {grant.principal}"
            )
            return Decision("not_found" if action in ("list", "read") else "forbidden", reason)

    level, source = _level(user, action, target, facts.memberships, grants, groups)
    needed = NEEDED[action]
    if level >= needed:
        return Decision("allow", f"{user} may {action} {where}: {source}")
    has = f"{user} has {LEVEL_NAMES[level]} access"
    has += f" ({source})" if level > NONE else f" (nothing shares {where} with {user})"
    reason = f"{user} may not {action} {where}: it needs {LEVEL_NAMES[needed]} access, {has}"
    return Decision("not_found" if action in ("list", "read") else "forbidden", reason)


def _anonymous(action: Action, target: Target, where: str) -> Decision:
    if action in ("write", "admin"):
        return Decision(
            "unauthenticated",
            f"anonymous callers may not {action} {where}: log in (runhouse login --token TOKEN)",
        )
    if target.visibility == "public":
        return Decision("allow", f"{where} is public")
    return Decision(
        "not_found", f"anonymous callers may {action} only public resources: {where} is not"
    )


def _level(
    user: str,
    action: Action,
    target: Target,
    memberships: tuple[Membership, ...],
    grants: list[Grant],
    groups: frozenset[Path],
) -> tuple[int, str]:
    """The highest level any allow gives ``user`` on the target, and where it comes from."""
    where = _show(target.path)
    found: list[tuple[int, str]] = [(NONE, "")]
    if target.path and target.path[0] == user:
        found.append((ADMIN, f"{_show(target.path[:1])} is {user}'s own folder"))
    if target.owner is not None and target.owner == user:
        found.append((ADMIN, f"{user} owns {where}"))
    for m in memberships:
        if m.username == user and m.group and _is_prefix(m.group, target.path):
            found.append((ROLE_LEVELS[m.role], f"{user} is {m.role} of group {_show(m.group)}"))
    for g in grants:
        if g.access in GRANT_LEVELS and _applies(g.principal, user, groups):
            text = f"a {g.access} grant on {_show(g.path)} to {g.principal}"
            found.append((GRANT_LEVELS[g.access], text))
    if target.visibility == "public":
        found.append((READ, f"{where} is public"))
    elif target.visibility == "unlisted" and action == "read":
        found.append((READ, f"{where} is unlisted and readable by any logged-in user who knows it"))
    # max() keeps the first of equal levels: own folder and ownership read best in messages.
    return max(found, key=lambda item: item[0])


def _applies(principal: str, user: str, groups: frozenset[Path]) -> bool:
    """Whether a grant's principal is this user, or a group the user belongs to (a member
    of a group is a member of every group beneath it)."""
    if principal.startswith("/"):
        group = tuple(part for part in principal.split("/") if part)
        return any(group[:n] in groups for n in range(1, len(group) + 1))
    return principal == user


def _is_prefix(prefix: Path, path: Path) -> bool:
    # Tuples, not strings: ("acme", "ml2") must not fall under ("acme", "ml").
    return path[: len(prefix)] == prefix


def _show(path: Path) -> str:
    return "/" + "/".join(path)
