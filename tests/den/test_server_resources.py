"""Resources on a real Den (SQLite and PostgreSQL): versions, history, conflicts, deletes,
folder listings, and the answers to bad input (400, 401, 413, 422), never a 5xx."""

from __future__ import annotations

from tests.den_servers import DenServer, unique


def put(den: DenServer, token: str, path: str, config: dict, **extra: object) -> object:
    return den.request("PUT", f"/v1/resources/{path}", {"config": config, **extra}, token=token)


def test_versions_are_contiguous_and_history_is_newest_first(den: DenServer) -> None:
    ana = den.new_user()
    path = f"{ana.name}/model"
    for n in range(1, 4):
        reply = den.request("PUT", f"/v1/resources/{path}", {"config": {"n": n}}, token=ana.token)
        assert reply.status == 200, reply
        assert reply.body["version"] == n
        assert reply.body["author"] == ana.name
        assert reply.body["timestamp"].endswith("+00:00")
    current = den.request("GET", f"/v1/resources/{path}", token=ana.token)
    assert current.status == 200
    assert current.body["config"] == {"n": 3}
    assert current.body["version"] == 3
    assert current.body["owner"] == ana.name
    assert current.body["visibility"] == "private"
    first = den.request("GET", f"/v1/resources/{path}?version=1", token=ana.token)
    assert (first.body["config"], first.body["version"]) == ({"n": 1}, 1)
    history = den.request("GET", f"/v1/history/{path}", token=ana.token)
    assert [v["version"] for v in history.body["versions"]] == [3, 2, 1]
    assert [v["config"]["n"] for v in history.body["versions"]] == [3, 2, 1]
    assert {v["author"] for v in history.body["versions"]} == {ana.name}
    limited = den.request("GET", f"/v1/history/{path}?limit=2", token=ana.token)
    assert [v["version"] for v in limited.body["versions"]] == [3, 2]


def test_a_missing_version_lists_the_versions_there_are(den: DenServer) -> None:
    ana = den.new_user()
    for n in range(2):
        den.request("PUT", f"/v1/resources/{ana.name}/x", {"config": {"n": n}}, token=ana.token)
    reply = den.request("GET", f"/v1/resources/{ana.name}/x?version=7", token=ana.token)
    assert reply.status == 404
    assert reply.body["error"] == "not_found"
    assert reply.body["versions"] == [1, 2]
    assert "no version 7" in reply.body["message"]


def test_expected_version_and_overwrite_conflicts(den: DenServer) -> None:
    ana = den.new_user()
    route = f"/v1/resources/{ana.name}/x"
    fresh = den.request("PUT", route, {"config": {}, "expected_version": 0}, token=ana.token)
    assert fresh.status == 200 and fresh.body["version"] == 1
    again = den.request("PUT", route, {"config": {}, "expected_version": 0}, token=ana.token)
    assert again.status == 409
    assert again.body["error"] == "version_conflict"
    assert again.body["current_version"] == 1
    assert (
        den.request("PUT", route, {"config": {}, "expected_version": 1}, token=ana.token).body[
            "version"
        ]
        == 2
    )
    stale = den.request("PUT", route, {"config": {}, "expected_version": 1}, token=ana.token)
    assert (stale.status, stale.body["current_version"]) == (409, 2)
    missing = den.request(
        "PUT", f"/v1/resources/{ana.name}/y", {"config": {}, "expected_version": 3}, token=ana.token
    )
    assert missing.status == 409
    assert missing.body["current_version"] is None
    taken = den.request("PUT", route, {"config": {}, "overwrite": False}, token=ana.token)
    assert taken.status == 409
    assert taken.body["error"] == "exists"
    assert "overwrite" in taken.body["message"]
    assert (
        den.request("GET", f"/v1/history/{ana.name}/x", token=ana.token).body["versions"][0][
            "version"
        ]
        == 2
    )


def test_delete_removes_every_version(den: DenServer) -> None:
    ana = den.new_user()
    route = f"/v1/resources/{ana.name}/gone"
    for _ in range(3):
        den.request("PUT", route, {"config": {}}, token=ana.token)
    assert den.request("DELETE", route, token=ana.token).body == {"deleted": True}
    assert den.request("GET", route, token=ana.token).status == 404
    assert den.request("GET", f"/v1/history/{ana.name}/gone", token=ana.token).status == 404
    assert den.request("DELETE", route, token=ana.token).body == {"deleted": False}
    again = den.request("PUT", route, {"config": {"n": 1}}, token=ana.token)
    assert again.body["version"] == 1  # numbering starts over


def test_folders_list_direct_children_sorted(den: DenServer) -> None:
    ana = den.new_user()
    for path, rtype in (
        ("b", "function"),
        ("a", "module"),
        ("team/x", "function"),
        ("team/deep/y", "env"),
        ("b/inner", "function"),
    ):
        config = {"resource_type": rtype}
        den.request("PUT", f"/v1/resources/{ana.name}/{path}", {"config": config}, token=ana.token)
    den.request("PUT", f"/v1/resources/{ana.name}/a", {"config": {}}, token=ana.token)
    listing = den.request("GET", f"/v1/folders/{ana.name}", token=ana.token)
    assert listing.status == 200
    assert listing.body["entries"] == [
        {
            "name": "a",
            "address": f"/{ana.name}/a",
            "kind": "resource",
            "resource_type": None,  # the newest version has none
            "version": 2,
        },
        {
            "name": "b",
            "address": f"/{ana.name}/b",
            "kind": "resource",
            "resource_type": "function",
            "version": 1,
        },
        {
            "name": "b/",
            "address": f"/{ana.name}/b",
            "kind": "folder",
            "resource_type": None,
            "version": None,
        },
        {
            "name": "team/",
            "address": f"/{ana.name}/team",
            "kind": "folder",
            "resource_type": None,
            "version": None,
        },
    ]
    team = den.request("GET", f"/v1/folders/{ana.name}/team/", token=ana.token)
    assert [e["name"] for e in team.body["entries"]] == ["deep/", "x"]
    empty = den.request("GET", f"/v1/folders/{ana.name}/nothing", token=ana.token)
    assert (empty.status, empty.body) == (200, {"entries": []})
    root = den.request("GET", "/v1/folders/", token=ana.token)
    assert {"name": f"{ana.name}/", "address": f"/{ana.name}", "kind": "folder"}.items() <= (
        next(e for e in root.body["entries"] if e["name"] == f"{ana.name}/").items()
    )


def test_names_with_like_wildcards_do_not_leak_into_listings(den: DenServer) -> None:
    ana = den.new_user()
    den.request("PUT", f"/v1/resources/{ana.name}/a_b/x", {"config": {}}, token=ana.token)
    den.request("PUT", f"/v1/resources/{ana.name}/aXb/y", {"config": {}}, token=ana.token)
    listing = den.request("GET", f"/v1/folders/{ana.name}/a_b", token=ana.token)
    assert [e["name"] for e in listing.body["entries"]] == ["x"]


def test_bad_names_are_400_with_the_rule(den: DenServer) -> None:
    ana = den.new_user()
    for bad in (f"{ana.name}/s3", f"{ana.name}/.hidden", f"{ana.name}//x", f"{ana.name}/a b"):
        reply = den.request(
            "PUT", f"/v1/resources/{bad.replace(' ', '%20')}", {"config": {}}, token=ana.token
        )
        assert reply.status == 400, (bad, reply)
        assert reply.body["error"] == "bad_request"
        assert "Invalid resource name" in reply.body["message"]
    top = den.request("PUT", f"/v1/resources/{ana.name}", {"config": {}}, token=ana.token)
    assert top.status == 400
    assert "is a folder" in top.body["message"]


def test_bad_bodies_are_422_and_huge_ones_413(den: DenServer) -> None:
    ana = den.new_user()
    route = f"/v1/resources/{ana.name}/x"
    broken = den.request(
        "PUT",
        route,
        data=b"{not json",
        token=ana.token,
        headers={"Content-Type": "application/json"},
    )
    assert broken.status == 422
    assert broken.body["error"] == "invalid"
    assert "not valid JSON" in broken.body["message"]
    wrong = den.request("PUT", route, {"config": [1, 2], "expected_version": -1}, token=ana.token)
    assert wrong.status == 422
    assert "config" in wrong.body["message"] and "expected_version" in wrong.body["message"]
    huge = den.request("PUT", route, {"config": {"blob": "x" * (2 * 1024 * 1024)}}, token=ana.token)
    assert huge.status == 413
    assert huge.body["error"] == "too_large"
    chunked = den.request(
        "PUT",
        route,
        data=iter([b'{"config": {"blob": "', b"x" * (1024 * 1024), b'"}}']),
        token=ana.token,
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status == 413
    assert den.request("GET", route, token=ana.token).status == 404  # nothing was saved


def test_tokens_that_cannot_be_used_are_401_even_for_public_reads(den: DenServer) -> None:
    ana = den.new_user()
    den.request("PUT", f"/v1/resources/{ana.name}/pub", {"config": {}}, token=ana.token)
    den.request("PUT", f"/v1/visibility/{ana.name}/pub", {"visibility": "public"}, token=ana.token)
    assert den.request("GET", f"/v1/resources/{ana.name}/pub").status == 200
    for header in (f"Bearer {ana.token}x", "Bearer rhd_nope_nope", "Basic abc", "Bearer "):
        reply = den.request(
            "GET", f"/v1/resources/{ana.name}/pub", headers={"Authorization": header}
        )
        assert reply.status == 401, header
        assert reply.body["error"] == "unauthenticated"
        assert reply.headers.get("www-authenticate") == "Bearer"
    assert den.request("GET", "/v1/health", token="wrong").status == 200  # needs no token


def test_unknown_routes_and_methods_answer_json(den: DenServer) -> None:
    missing = den.request("GET", "/v1/nothing-here")
    assert (missing.status, missing.body["error"]) == (404, "not_found")
    wrong = den.request("POST", "/v1/health")
    assert (wrong.status, wrong.body["error"]) == (405, "method_not_allowed")
    name = unique()
    assert den.request("GET", f"/v1/resources/{name}/x").status == 404


def test_inputs_a_database_would_choke_on_are_4xx(den: DenServer) -> None:
    ana = den.new_user()
    route = f"/v1/resources/{ana.name}/x"
    odd = {"k\u0000ey": "nul \u0000 inside", "deep": [[[{"a": None}]]], "big": 10**30}
    saved = den.request("PUT", route, {"config": odd}, token=ana.token)
    assert saved.status == 200, saved
    assert den.request("GET", route, token=ana.token).body["config"] == odd
    nan = den.request(
        "PUT",
        route,
        data=b'{"config": {"x": NaN}}',
        token=ana.token,
        headers={"Content-Type": "application/json"},
    )
    assert (nan.status, nan.body["error"]) == (422, "invalid")
    long_type = den.request("PUT", route, {"config": {"resource_type": "t" * 500}}, token=ana.token)
    assert long_type.status == 422
    deep = "/".join(["d"] * 600)
    assert (
        den.request(
            "PUT", f"/v1/resources/{ana.name}/{deep}", {"config": {}}, token=ana.token
        ).status
        == 400
    )
    assert den.request("GET", f"{route}?version={10**30}", token=ana.token).status == 422
    assert den.request("GET", f"/v1/history/{ana.name}/x?limit=0", token=ana.token).status == 422
    named = den.request("POST", "/v1/tokens", {"name": "a\u0000b"}, token=ana.token)
    assert named.status == 422
    for route in ("/v1/users/a%00b", "/v1/tokens/a%00b"):
        assert den.request("DELETE", route, token=den.admin_token).status in (400, 404)
    grant = den.request(
        "POST",
        f"/v1/grants/{ana.name}/x",
        {"principals": ["a\u0000"], "access": "read"},
        token=ana.token,
    )
    assert grant.status == 400
