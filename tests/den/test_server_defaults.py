"""Defaults on a real Den (SQLite and PostgreSQL): a user's own, a group's (set by its
admins), and the merge (the deepest group wins, then the path that sorts first; the user's
own win over all), and what bad input gets."""

from __future__ import annotations

import json
from typing import Any

from tests.den_servers import DenServer, DenUser, unique


def put(den: DenServer, route: str, defaults: Any, token: str) -> Any:
    """PUT ``{"defaults": defaults}`` to ``route``; the reply."""
    return den.request("PUT", route, {"defaults": defaults}, token=token)


def group(den: DenServer, path: str, defaults: dict[str, Any] | None = None) -> None:
    """Create the group (as Den's admin), with ``defaults`` if given."""
    assert den.request("PUT", f"/v1/groups/{path}", token=den.admin_token).status == 200
    if defaults is not None:
        assert put(den, f"/v1/group-defaults/{path}", defaults, den.admin_token).status == 200


def join(den: DenServer, path: str, user: DenUser, role: str = "reader") -> None:
    """Give ``user`` ``role`` in the group (as Den's admin)."""
    body = {"username": user.name, "role": role}
    reply = den.request("PUT", f"/v1/group-members/{path}", body, token=den.admin_token)
    assert reply.status == 200


def test_a_users_own_defaults(den: DenServer) -> None:
    ana = den.new_user()
    assert den.request("GET", "/v1/defaults", token=ana.token).body == {
        "defaults": {},
        "sources": {},
    }
    mine = {"autostop_mins": 30, "gpu": "A10G", "spot": True, "regions": ["us", "eu"]}
    stored = put(den, "/v1/defaults", mine, ana.token)
    assert stored.status == 200 and stored.body["defaults"] == mine
    got = den.request("GET", "/v1/defaults", token=ana.token).body
    assert got["defaults"] == mine
    assert got["sources"] == {key: "user" for key in mine}
    assert put(den, "/v1/defaults", {"gpu": "H100"}, ana.token).body["defaults"] == {"gpu": "H100"}
    bo = den.new_user()
    assert den.request("GET", "/v1/defaults", token=bo.token).body["defaults"] == {}
    assert put(den, "/v1/defaults", {}, ana.token).status == 200
    assert den.request("GET", "/v1/defaults", token=ana.token).body["defaults"] == {}
    assert den.request("GET", "/v1/defaults").status == 401
    assert den.request("PUT", "/v1/defaults", {"defaults": {}}).status == 401


def test_bad_defaults_get_a_clear_4xx(den: DenServer) -> None:
    ana = den.new_user()
    for bad in ({"Bad": 1}, {"a-b": 1}, {"": 1}, {"x" * 101: 1}, {"9lives": 1}):
        refused = put(den, "/v1/defaults", bad, ana.token)
        assert refused.status == 422, bad
        assert "settings keys" in refused.body["message"]
    for not_an_object in ([1, 2], "text", None, 3):
        assert put(den, "/v1/defaults", not_an_object, ana.token).status == 422
    assert den.request("PUT", "/v1/defaults", {}, token=ana.token).status == 422
    huge = put(den, "/v1/defaults", {"blob": "x" * 70_000}, ana.token)
    assert huge.status == 422 and "65536" in huge.body["message"]
    nan = den.request(
        "PUT",
        "/v1/defaults",
        token=ana.token,
        data=b'{"defaults": {"x": NaN}}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status == 422 and "NaN" in nan.body["message"]
    over_the_body_limit = put(den, "/v1/defaults", {"blob": "x" * (2 * 1024 * 1024)}, ana.token)
    assert over_the_body_limit.status == 413
    assert den.request("GET", "/v1/defaults", token=ana.token).body["defaults"] == {}


def test_group_defaults_are_set_by_its_admins(den: DenServer) -> None:
    org = unique("org")
    boss, member, stranger = den.new_user(), den.new_user(), den.new_user()
    group(den, org)
    group(den, f"{org}/ml")
    join(den, org, boss, "admin")
    join(den, f"{org}/ml", member, "writer")
    shown = den.request("GET", f"/v1/groups/{org}/ml", token=member.token).body
    assert shown["defaults"] == {}
    wanted = {"autostop_mins": 30, "gpu": "A10G"}
    stored = put(den, f"/v1/group-defaults/{org}/ml", wanted, boss.token)
    assert (stored.status, stored.body) == (200, {"defaults": wanted})
    assert den.request("GET", f"/v1/groups/{org}/ml", token=member.token).body["defaults"] == wanted
    assert den.request("GET", f"/v1/groups/{org}", token=boss.token).body["defaults"] == {}
    refused = put(den, f"/v1/group-defaults/{org}/ml", {"gpu": "T4"}, member.token)
    assert refused.status == 403
    assert put(den, f"/v1/group-defaults/{org}/ml", {"gpu": "T4"}, stranger.token).status == 403
    assert put(den, f"/v1/group-defaults/{org}/ml", {}, den.admin_token).status == 200
    assert den.request("GET", f"/v1/groups/{org}/ml", token=boss.token).body["defaults"] == {}
    missing = put(den, f"/v1/group-defaults/{org}/nope", {"a": 1}, den.admin_token)
    assert missing.status == 404 and "create it first" in missing.body["message"]
    assert put(den, f"/v1/group-defaults/{org}", {"A": 1}, den.admin_token).status == 422
    assert put(den, f"/v1/group-defaults/{org}", {"a": 1}, "").status == 401


def test_merged_defaults_three_groups_deep(den: DenServer) -> None:
    org = unique("org")
    ana, top_member = den.new_user(), den.new_user()
    group(den, org, {"autostop_mins": 60, "gpu": "T4", "region": "us", "spot": False})
    group(den, f"{org}/ml", {"autostop_mins": 30, "gpu": "A10G"})
    group(den, f"{org}/ml/vision", {"autostop_mins": 10})
    join(den, f"{org}/ml/vision", ana)
    join(den, org, top_member, "admin")
    put(den, "/v1/defaults", {"spot": True}, ana.token)

    merged = den.request("GET", "/v1/defaults?merged=1", token=ana.token).body
    assert merged["defaults"] == {"autostop_mins": 10, "gpu": "A10G", "region": "us", "spot": True}
    assert merged["sources"] == {
        "autostop_mins": f"/{org}/ml/vision",
        "gpu": f"/{org}/ml",
        "region": f"/{org}",
        "spot": "user",
    }
    own = den.request("GET", "/v1/defaults", token=ana.token).body
    assert own == {"defaults": {"spot": True}, "sources": {"spot": "user"}}
    # Defaults flow up the group tree, not down: a member of the top group gets its only.
    top = den.request("GET", "/v1/defaults?merged=true", token=top_member.token).body
    assert top["defaults"] == {"autostop_mins": 60, "gpu": "T4", "region": "us", "spot": False}
    assert set(top["sources"].values()) == {f"/{org}"}


def test_between_unrelated_groups_the_deeper_then_the_first_path_wins(den: DenServer) -> None:
    first, second = sorted([unique("ga"), unique("gb")])
    ana = den.new_user()
    group(den, first, {"gpu": "first", "region": "first"})
    group(den, second, {"gpu": "second", "region": "second"})
    group(den, f"{second}/deep", {"region": "deep"})
    join(den, first, ana)
    join(den, f"{second}/deep", ana)
    merged = den.request("GET", "/v1/defaults?merged=1", token=ana.token).body
    assert merged["defaults"] == {"gpu": "first", "region": "deep"}
    assert merged["sources"] == {"gpu": f"/{first}", "region": f"/{second}/deep"}
    assert json.dumps(merged["defaults"]) == json.dumps(dict(sorted(merged["defaults"].items())))
