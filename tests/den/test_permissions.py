"""Den's permission function as a table of cases, plus properties over random facts.

The cast: alice and bob are plain users; carol is a reader of /acme and an admin of
/acme/ml/vision; dave a writer of /acme/ml; erin an admin of /acme/ml/vision; frank an admin
of /acme and a reader of /acme/ml; gina a reader of /beta; hank a writer of /beta/team.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from runhouse.den.permissions import (
    Access,
    Action,
    Caller,
    Decision,
    Facts,
    Grant,
    Membership,
    Outcome,
    Path,
    Role,
    Target,
    TokenState,
    Visibility,
    decide,
)

ANON = Caller(None, token="none")

# The cast's memberships are in every case's facts: a user's own memberships matter, and
# everyone else's must be ignored.
MEMBERS = (
    Membership(("acme",), "carol", "reader"),
    Membership(("acme", "ml", "vision"), "carol", "admin"),
    Membership(("acme", "ml"), "dave", "writer"),
    Membership(("acme", "ml", "vision"), "erin", "admin"),
    Membership(("acme",), "frank", "admin"),
    Membership(("acme", "ml"), "frank", "reader"),
    Membership(("beta",), "gina", "reader"),
    Membership(("beta", "team"), "hank", "writer"),
)


def p(address: str) -> Path:
    """A path from an address: "/acme/ml/x" -> ("acme", "ml", "x")."""
    return tuple(part for part in address.split("/") if part)


def t(address: str, owner: str | None = None, visibility: Visibility = "private") -> Target:
    """A target at ``address``."""
    return Target(p(address), owner, visibility)


def caller(spec: str) -> Caller:
    """A caller from a word: bob, bob/revoked (a token state), anon, or root (Den admin)."""
    name, _, token = spec.partition("/")
    if name == "anon":
        return ANON
    if name == "root":
        return Caller("admin", admin=True, token=token or "valid")  # type: ignore[arg-type]
    return Caller(name, token=token or "valid")  # type: ignore[arg-type]


def grant(spec: str) -> Grant:
    """A grant from words: "read /acme/ml to bob", "deny /acme to /acme/ml"."""
    access, path, to, principal = spec.split()
    assert to == "to" and access in ("read", "write", "deny"), spec
    return Grant(p(path), principal, access)  # type: ignore[arg-type]


def case(
    id: str, who: str, action: Action, target: str | Target, *grants: str, expect: Outcome
) -> Any:
    """One row: ``who`` does ``action`` on ``target`` with ``grants`` -> ``expect``."""
    where = t(target) if isinstance(target, str) else target
    facts = Facts(tuple(grant(g) for g in grants), MEMBERS)
    return pytest.param(caller(who), action, where, facts, expect, id=id)


PUBLIC_X = t("/acme/ml/x", owner="alice", visibility="public")
UNLISTED_X = t("/acme/ml/x", owner="alice", visibility="unlisted")
PRIVATE_X = t("/acme/ml/x", owner="alice")

# fmt: off
CASES = [
    # Tokens: a bad one is refused everywhere, so the user learns to fix it.
    case("revoked-token-reads-public", "bob/revoked", "read", PUBLIC_X, expect="unauthenticated"),
    case("expired-token-writes-own-folder", "alice/expired", "write", "/alice/x",
         expect="unauthenticated"),
    case("unknown-token-lists-public", "bob/unknown", "list", PUBLIC_X, expect="unauthenticated"),
    case("revoked-token-of-den-admin", "root/revoked", "read", PRIVATE_X,
         expect="unauthenticated"),
    case("expired-token-of-group-admin", "frank/expired", "read", PRIVATE_X,
         expect="unauthenticated"),
    # Anonymous callers: public only, and never writes.
    case("anon-reads-public", "anon", "read", PUBLIC_X, expect="allow"),
    case("anon-lists-public", "anon", "list", PUBLIC_X, expect="allow"),
    case("anon-reads-unlisted", "anon", "read", UNLISTED_X, expect="not_found"),
    case("anon-lists-unlisted", "anon", "list", UNLISTED_X, expect="not_found"),
    case("anon-reads-private", "anon", "read", PRIVATE_X, expect="not_found"),
    case("anon-writes-public", "anon", "write", PUBLIC_X, expect="unauthenticated"),
    case("anon-shares-public", "anon", "admin", PUBLIC_X, expect="unauthenticated"),
    case("anon-writes-private", "anon", "write", PRIVATE_X, expect="unauthenticated"),
    # Visibility for a logged-in user with no other access.
    case("user-reads-public", "bob", "read", PUBLIC_X, expect="allow"),
    case("user-lists-public", "bob", "list", PUBLIC_X, expect="allow"),
    case("user-reads-unlisted", "bob", "read", UNLISTED_X, expect="allow"),
    case("user-lists-unlisted-not-listed", "bob", "list", UNLISTED_X, expect="not_found"),
    case("user-reads-private", "bob", "read", PRIVATE_X, expect="not_found"),
    case("user-writes-public-readable", "bob", "write", PUBLIC_X, expect="forbidden"),
    case("user-writes-unlisted-readable", "bob", "write", UNLISTED_X, expect="forbidden"),
    case("user-writes-private-unreadable", "bob", "write", PRIVATE_X, expect="forbidden"),
    case("user-shares-public", "bob", "admin", PUBLIC_X, expect="forbidden"),
    case("member-lists-unlisted-with-role", "carol", "list", UNLISTED_X, expect="allow"),
    # Own folder and ownership.
    case("own-folder-write", "alice", "write", "/alice/x", expect="allow"),
    case("own-folder-list-root", "alice", "list", "/alice", expect="allow"),
    case("own-folder-admin-on-others-resource", "alice", "admin", t("/alice/x", owner="bob"),
         expect="allow"),
    case("own-folder-deep", "alice", "write", "/alice/a/b/c", expect="allow"),
    case("other-users-folder", "bob", "read", "/alice/x", expect="not_found"),
    case("folder-name-prefix-is-not-own", "alice", "read", "/alice2/x", expect="not_found"),
    case("owner-writes-in-group-folder", "alice", "write", PRIVATE_X, expect="allow"),
    case("owner-shares", "alice", "admin", PRIVATE_X, expect="allow"),
    case("non-owner-shares-private", "bob", "admin", PRIVATE_X, expect="forbidden"),
    # Den admin is above everything but a bad token.
    case("den-admin-reads-private", "root", "read", PRIVATE_X, expect="allow"),
    case("den-admin-writes-others-folder", "root", "write", "/alice/x", expect="allow"),
    case("den-admin-despite-deny", "root", "write", PRIVATE_X,
         "deny /acme to admin", expect="allow"),
    case("den-admin-creates-top-level-group", "root", "admin", "/newco", expect="allow"),
    # Group roles, inherited down the group tree.
    case("reader-reads", "carol", "read", PRIVATE_X, expect="allow"),
    case("reader-lists", "carol", "list", PRIVATE_X, expect="allow"),
    case("reader-writes", "carol", "write", PRIVATE_X, expect="forbidden"),
    case("reader-shares", "carol", "admin", PRIVATE_X, expect="forbidden"),
    case("writer-writes", "dave", "write", PRIVATE_X, expect="allow"),
    case("writer-reads", "dave", "read", PRIVATE_X, expect="allow"),
    case("writer-shares", "dave", "admin", PRIVATE_X, expect="forbidden"),
    case("writer-role-not-upward-write", "dave", "write", "/acme/y", expect="forbidden"),
    case("writer-role-not-upward-read", "dave", "read", "/acme/y", expect="not_found"),
    case("group-admin-shares", "frank", "admin", PRIVATE_X, expect="allow"),
    case("top-member-three-deep", "carol", "read", "/acme/ml/vision/x", expect="allow"),
    case("subgroup-role-raises", "carol", "admin", "/acme/ml/vision/x", expect="allow"),
    case("subgroup-role-never-lowers", "frank", "write", PRIVATE_X, expect="allow"),
    case("subgroup-role-not-upward", "carol", "write", PRIVATE_X, expect="forbidden"),
    case("sibling-group-folder-write", "dave", "write", "/acme/ml2/x", expect="forbidden"),
    case("sibling-group-folder-read", "dave", "read", "/acme/ml2/x", expect="not_found"),
    case("other-group-role-ignored", "gina", "read", PRIVATE_X, expect="not_found"),
    case("others-memberships-ignored", "bob", "read", PRIVATE_X, expect="not_found"),
    # Grants: on the path or any folder above, to a user or to a group.
    case("user-read-grant-reads", "bob", "read", PRIVATE_X,
         "read /acme/ml/x to bob", expect="allow"),
    case("user-read-grant-writes", "bob", "write", PRIVATE_X,
         "read /acme/ml/x to bob", expect="forbidden"),
    case("user-write-grant-writes", "bob", "write", PRIVATE_X,
         "write /acme/ml/x to bob", expect="allow"),
    case("user-write-grant-shares", "bob", "admin", PRIVATE_X,
         "write /acme/ml/x to bob", expect="forbidden"),
    case("folder-grant-covers-beneath", "bob", "read", "/acme/ml/vision/x",
         "read /acme/ml to bob", expect="allow"),
    case("folder-grant-on-user-folder", "bob", "write", "/alice/p/q",
         "write /alice to bob", expect="allow"),
    case("folder-grant-not-sibling", "bob", "read", "/acme/ml2/x",
         "read /acme/ml to bob", expect="not_found"),
    case("grant-below-not-above", "bob", "list", "/acme/ml",
         "read /acme/ml/x to bob", expect="not_found"),
    case("grant-to-other-user", "bob", "read", PRIVATE_X,
         "read /acme to bobby", expect="not_found"),
    case("grant-to-group-member", "gina", "read", PRIVATE_X,
         "read /acme/ml/x to /beta", expect="allow"),
    case("grant-to-group-write", "hank", "write", PRIVATE_X,
         "write /acme/ml to /beta/team", expect="allow"),
    case("grant-to-subgroup-reaches-parent-member", "gina", "read", PRIVATE_X,
         "read /acme to /beta/team", expect="allow"),
    case("grant-to-group-not-subgroup-member", "hank", "read", PRIVATE_X,
         "read /acme to /beta", expect="not_found"),
    case("grant-to-user-named-like-group", "gina", "read", PRIVATE_X,
         "read /acme to beta", expect="not_found"),
    case("grant-to-group-not-nonmember", "bob", "read", PRIVATE_X,
         "read /acme to /beta", expect="not_found"),
    case("grant-to-sibling-group", "gina", "read", PRIVATE_X,
         "read /acme to /beta2", expect="not_found"),
    # Deny overrides every allow; only Den admin is above it.
    case("deny-beats-owner-read", "alice", "read", PRIVATE_X,
         "deny /acme/ml/x to alice", expect="not_found"),
    case("deny-beats-owner-write", "alice", "write", PRIVATE_X,
         "deny /acme/ml/x to alice", expect="forbidden"),
    case("deny-beats-own-folder", "alice", "write", "/alice/secret",
         "deny /alice/secret to alice", expect="forbidden"),
    case("deny-beats-group-admin", "frank", "read", PRIVATE_X,
         "deny /acme/ml to frank", expect="not_found"),
    case("deny-beats-group-admin-sharing", "frank", "admin", PRIVATE_X,
         "deny /acme/ml to frank", expect="forbidden"),
    case("deny-beats-public", "bob", "read", PUBLIC_X,
         "deny /acme/ml/x to bob", expect="not_found"),
    case("deny-beats-public-list", "bob", "list", PUBLIC_X,
         "deny /acme to bob", expect="not_found"),
    case("deny-beats-unlisted", "bob", "read", UNLISTED_X,
         "deny /acme/ml/x to bob", expect="not_found"),
    case("deny-beats-user-grant", "bob", "read", PRIVATE_X,
         "write /acme to bob", "deny /acme/ml/x to bob", expect="not_found"),
    case("deny-on-folder-covers-beneath", "dave", "write", PRIVATE_X,
         "deny /acme to /acme/ml", expect="forbidden"),
    case("deny-to-group-hits-member", "dave", "read", PRIVATE_X,
         "deny /acme/ml/x to /acme/ml", expect="not_found"),
    case("deny-to-subgroup-hits-parent-member", "carol", "read", "/acme/ml/vision/x",
         "deny /acme/ml/vision to /acme/ml/vision", expect="not_found"),
    case("deny-to-group-hits-three-deep", "frank", "read", "/acme/ml/vision/x",
         "deny /acme to /acme/ml/vision", expect="not_found"),
    case("deny-to-other-group-ignored", "dave", "write", PRIVATE_X,
         "deny /acme to /beta", expect="allow"),
    case("deny-to-other-user-ignored", "bob", "read", PUBLIC_X,
         "deny /acme/ml/x to carol", expect="allow"),
    case("deny-on-sibling-path-ignored", "bob", "read", PUBLIC_X,
         "deny /acme/ml2 to bob", expect="allow"),
    case("deny-below-target-ignored", "dave", "write", PRIVATE_X,
         "deny /acme/ml/x/sub to dave", expect="allow"),
    # Group administration: action "admin" on the group's path.
    case("parent-admin-creates-subgroup", "frank", "admin", "/acme/research", expect="allow"),
    case("grandparent-admin-creates-deep-subgroup", "frank", "admin", "/acme/ml/vision/new",
         expect="allow"),
    case("subgroup-admin-manages-own-group", "erin", "admin", "/acme/ml/vision", expect="allow"),
    case("subgroup-admin-not-parent-group", "erin", "admin", "/acme/ml", expect="forbidden"),
    case("writer-creates-subgroup", "dave", "admin", "/acme/ml/new", expect="forbidden"),
    case("reader-adds-member", "carol", "admin", "/acme", expect="forbidden"),
    case("user-creates-top-level-group", "alice", "admin", "/newco", expect="forbidden"),
    case("group-admin-creates-other-top-level", "frank", "admin", "/beta", expect="forbidden"),
    case("group-admin-creates-sibling-top-level", "frank", "admin", "/acme2", expect="forbidden"),
    case("write-grant-is-not-group-admin", "bob", "admin", "/acme/ml",
         "write /acme to bob", expect="forbidden"),
]
# fmt: on


@pytest.mark.parametrize(("caller", "action", "target", "facts", "expected"), CASES)
def test_decide(
    caller: Caller, action: Action, target: Target, facts: Facts, expected: Outcome
) -> None:
    decision = decide(caller, action, target, facts)
    assert decision.outcome == expected, decision.reason
    assert decision.allowed == (expected == "allow")
    assert decision.reason


def test_the_table_is_large_and_its_ids_unique() -> None:
    ids = [row.id for row in CASES]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


def check(who: str, action: Action, target: str | Target, *grants: str) -> Decision:
    """The decision for one row of the table's kind."""
    row = case("one", who, action, target, *grants, expect="allow")
    return decide(*row.values[:4])


def test_reasons_say_why() -> None:
    denied = check("dave", "read", PRIVATE_X, "deny /acme to /acme/ml")
    assert denied.reason == "dave is denied /acme/ml/x by a deny grant on /acme to /acme/ml"
    role = check("dave", "write", PRIVATE_X)
    assert role.reason == "dave may write /acme/ml/x: dave is writer of group /acme/ml"
    shared = check("bob", "write", PRIVATE_X, "read /acme/ml to bob")
    assert shared.reason == (
        "bob may not write /acme/ml/x: it needs write access, bob has read access "
        "(a read grant on /acme/ml to bob)"
    )
    nothing = check("bob", "read", PRIVATE_X)
    assert "bob has no access" in nothing.reason
    assert "log in again" in check("bob/revoked", "read", PUBLIC_X).reason
    assert "log in" in check("anon", "write", PUBLIC_X).reason
    assert check("root", "write", PRIVATE_X).reason == "admin is a Den admin"


def test_decisions_are_plain_frozen_data() -> None:
    assert Decision("allow", "x").allowed and not Decision("forbidden", "x").allowed
    with pytest.raises(AttributeError):
        Caller("alice").username = "bob"  # type: ignore[misc]


# Properties over random facts drawn from a small world, so that facts often interact.
USERS = ["alice", "bob", "carol"]
GROUPS: list[Path] = [("acme",), ("acme", "ml"), ("acme", "ml", "vision"), ("beta",)]
PRINCIPALS = USERS + ["/" + "/".join(g) for g in GROUPS]
PATHS: list[Path] = [
    ("alice", "x"),
    ("bob", "x"),
    ("acme", "x"),
    ("acme", "ml", "x"),
    ("acme", "ml2", "x"),
    ("acme", "ml", "vision", "x"),
    ("acme",),
    ("acme", "ml"),
    ("beta", "x"),
]
ACTIONS: list[Action] = ["list", "read", "write", "admin"]
ACCESSES: list[Access] = ["read", "write", "deny"]
ROLES: list[Role] = ["reader", "writer", "admin"]
VISIBILITIES: list[Visibility] = ["private", "unlisted", "public"]
TOKENS: list[TokenState] = ["valid", "valid", "valid", "revoked"]


def random_world(rng: random.Random) -> tuple[Caller, Action, Target, Facts]:
    """A caller, an action, a target and facts drawn from the small world."""
    grants = tuple(
        Grant(rng.choice(PATHS)[: rng.randint(1, 3)], rng.choice(PRINCIPALS), rng.choice(ACCESSES))
        for _ in range(rng.randint(0, 4))
    )
    memberships = tuple(
        Membership(rng.choice(GROUPS), rng.choice(USERS), rng.choice(ROLES))
        for _ in range(rng.randint(0, 4))
    )
    target = Target(rng.choice(PATHS), rng.choice([None, *USERS]), rng.choice(VISIBILITIES))
    who = Caller(rng.choice(USERS), token=rng.choice(TOKENS))
    return who, rng.choice(ACTIONS), target, Facts(grants, memberships)


WORLDS = [random_world(random.Random(seed)) for seed in range(500)]


def more(facts: Facts, grant: Grant) -> Facts:
    """``facts`` with one more grant."""
    return Facts((*facts.grants, grant), facts.memberships)


def test_den_admin_is_always_allowed() -> None:
    for who, action, target, facts in WORLDS:
        admin = Caller(who.username, admin=True)
        assert decide(admin, action, target, facts).allowed


def test_anonymous_never_writes_and_reads_only_public() -> None:
    for _, action, target, facts in WORLDS:
        assert decide(ANON, "write", target, facts).outcome == "unauthenticated"
        assert decide(ANON, "admin", target, facts).outcome == "unauthenticated"
        readable = action in ("list", "read") and target.visibility == "public"
        assert decide(ANON, action, target, facts).allowed == readable


def test_adding_a_deny_never_allows() -> None:
    changed = 0
    for who, action, target, facts in WORLDS:
        before = decide(who, action, target, facts)
        for principal in PRINCIPALS:
            for depth in range(1, len(target.path) + 1):
                deny = Grant(target.path[:depth], principal, "deny")
                after = decide(who, action, target, more(facts, deny))
                assert before.allowed or not after.allowed, (before.reason, after.reason)
                changed += before.allowed and not after.allowed
    assert changed  # the world has denies that bite


def test_adding_an_allow_never_denies() -> None:
    changed = 0
    for who, action, target, facts in WORLDS:
        before = decide(who, action, target, facts)
        for principal in PRINCIPALS:
            for access in ("read", "write"):
                grant = Grant(target.path, principal, access)  # type: ignore[arg-type]
                after = decide(who, action, target, more(facts, grant))
                assert after.allowed or not before.allowed, (before.reason, after.reason)
                changed += after.allowed and not before.allowed
    assert changed  # the world has grants that open things
