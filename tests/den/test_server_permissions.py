"""Permissions through a real Den's HTTP API (SQLite and PostgreSQL): hidden reads, refused
writes, sharing, deny, visibility, and groups nested three deep."""

from __future__ import annotations

from tests.den_servers import DenServer, DenUser, unique


def save(den: DenServer, who: DenUser, path: str, config: dict | None = None) -> int:
    reply = den.request("PUT", f"/v1/resources/{path}", {"config": config or {}}, token=who.token)
    return reply.status


def load(den: DenServer, who: DenUser | None, path: str) -> int:
    return den.request("GET", f"/v1/resources/{path}", token=who.token if who else None).status


def listed(den: DenServer, who: DenUser | None, folder: str) -> list[str]:
    reply = den.request("GET", f"/v1/folders/{folder}", token=who.token if who else None)
    assert reply.status == 200, reply
    return [e["name"] for e in reply.body["entries"]]


def share(den: DenServer, who: DenUser, path: str, principals: list[str], access: str) -> int:
    body = {"principals": principals, "access": access}
    return den.request("POST", f"/v1/grants/{path}", body, token=who.token).status


def make_group(den: DenServer, path: str) -> None:
    reply = den.request("PUT", f"/v1/groups/{path}", token=den.admin_token)
    assert reply.status == 200, reply


def add_member(den: DenServer, group: str, username: str, role: str, by: str) -> int:
    body = {"username": username, "role": role}
    return den.request("PUT", f"/v1/group-members/{group}", body, token=by).status


def test_private_resources_are_hidden_and_writes_refused(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    assert save(den, ana, f"{ana.name}/secret", {"v": 1}) == 200
    hidden = den.request("GET", f"/v1/resources/{ana.name}/secret", token=bo.token)
    missing = den.request("GET", f"/v1/resources/{ana.name}/nothing", token=bo.token)
    assert hidden.status == missing.status == 404
    assert hidden.body["message"].replace("secret", "nothing") == missing.body["message"]
    assert den.request("GET", f"/v1/history/{ana.name}/secret", token=bo.token).status == 404
    assert listed(den, bo, ana.name) == []
    for path in (f"{ana.name}/secret", f"{ana.name}/new"):  # existing or not: the same 403
        refused = den.request("PUT", f"/v1/resources/{path}", {"config": {}}, token=bo.token)
        assert refused.status == 403
        assert refused.body["error"] == "forbidden"
    assert den.request("DELETE", f"/v1/resources/{ana.name}/secret", token=bo.token).status == 403
    assert share(den, bo, f"{ana.name}/secret", [bo.name], "read") == 403
    assert load(den, ana, f"{ana.name}/secret") == 200
    assert load(den, None, f"{ana.name}/secret") == 404
    anon = den.request("PUT", f"/v1/resources/{ana.name}/x", {"config": {}})
    assert anon.status == 401
    assert "log in" in anon.body["message"]


def test_writing_outside_ones_folder_says_to_create_the_group(den: DenServer) -> None:
    ana = den.new_user()
    place = unique("nogroup")
    reply = den.request("PUT", f"/v1/resources/{place}/x", {"config": {}}, token=ana.token)
    assert reply.status == 403
    assert f"/{place}" in reply.body["message"]
    assert "create the group" in reply.body["message"]
    # A Den admin may write anywhere.
    assert (
        den.request("PUT", f"/v1/resources/{place}/x", {"config": {}}, token=den.admin_token).status
        == 200
    )


def test_sharing_read_then_write_then_revoking(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    save(den, ana, f"{ana.name}/model")
    assert share(den, ana, f"{ana.name}/model", [bo.name], "read") == 200
    assert load(den, bo, f"{ana.name}/model") == 200
    assert listed(den, bo, ana.name) == ["model"]
    assert save(den, bo, f"{ana.name}/model") == 403
    assert share(den, ana, f"{ana.name}/model", [bo.name], "write") == 200
    assert save(den, bo, f"{ana.name}/model") == 200
    grants = den.request("GET", f"/v1/grants/{ana.name}/model", token=ana.token)
    assert grants.body == {"grants": [{"principal": bo.name, "access": "write"}]}
    written = den.request("GET", f"/v1/resources/{ana.name}/model", token=ana.token)
    assert (written.body["author"], written.body["owner"]) == (bo.name, ana.name)
    removed = den.request(
        "DELETE", f"/v1/grants/{ana.name}/model", {"principals": None}, token=ana.token
    )
    assert removed.body == {"removed": [bo.name]}
    assert load(den, bo, f"{ana.name}/model") == 404


def test_a_folder_grant_covers_what_is_beneath(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    save(den, ana, f"{ana.name}/team/a")
    save(den, ana, f"{ana.name}/team/deep/b")
    save(den, ana, f"{ana.name}/other")
    assert share(den, ana, f"{ana.name}/team", [bo.name], "read") == 200
    assert load(den, bo, f"{ana.name}/team/deep/b") == 200
    assert load(den, bo, f"{ana.name}/other") == 404
    assert listed(den, bo, ana.name) == ["team/"]
    assert listed(den, bo, f"{ana.name}/team") == ["a", "deep/"]


def test_unknown_principals_are_named(den: DenServer) -> None:
    ana = den.new_user()
    save(den, ana, f"{ana.name}/x")
    ghost, group = unique("ghost"), "/" + unique("nogroup")
    body = {"principals": [ghost, group], "access": "read"}
    reply = den.request("POST", f"/v1/grants/{ana.name}/x", body, token=ana.token)
    assert reply.status == 404
    assert reply.body["unknown"] == [ghost, group]
    assert ghost in reply.body["message"]


def test_visibility_public_and_unlisted(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    save(den, ana, f"{ana.name}/pub")
    save(den, ana, f"{ana.name}/link")
    for path, visibility in (("pub", "public"), ("link", "unlisted")):
        reply = den.request(
            "PUT", f"/v1/visibility/{ana.name}/{path}", {"visibility": visibility}, token=ana.token
        )
        assert reply.body == {"visibility": visibility}
    assert load(den, None, f"{ana.name}/pub") == 200
    assert listed(den, None, ana.name) == ["pub"]
    assert load(den, None, f"{ana.name}/link") == 404  # unlisted needs a login
    assert load(den, bo, f"{ana.name}/link") == 200
    assert listed(den, bo, ana.name) == ["pub"]  # ... and is not listed
    assert save(den, bo, f"{ana.name}/pub") == 403  # public is read-only
    refused = den.request(
        "PUT", f"/v1/visibility/{ana.name}/pub", {"visibility": "private"}, token=bo.token
    )
    assert refused.status == 403


def test_deny_beats_a_group_role(den: DenServer) -> None:
    team = unique("team")
    make_group(den, team)
    ana, bo = den.new_user(), den.new_user()
    assert add_member(den, team, ana.name, "writer", den.admin_token) == 200
    assert add_member(den, team, bo.name, "writer", den.admin_token) == 200
    root = DenUser("admin", den.admin_token)
    assert save(den, root, f"{team}/model") == 200
    assert load(den, bo, f"{team}/model") == 200
    assert save(den, bo, f"{team}/model") == 200
    assert share(den, ana, f"{team}/model", [bo.name], "deny") == 403  # a writer, not an admin
    denied = den.request(
        "POST",
        f"/v1/grants/{team}/model",
        {"principals": [bo.name], "access": "deny"},
        token=den.admin_token,
    )
    assert denied.status == 200
    assert load(den, bo, f"{team}/model") == 404
    assert save(den, bo, f"{team}/model") == 403
    assert listed(den, bo, team) == []
    assert load(den, ana, f"{team}/model") == 200
    assert load(den, root, f"{team}/model") == 200


def test_groups_three_deep_inherit_roles(den: DenServer) -> None:
    top = unique("org")
    lead, reader, writer, outsider = (den.new_user() for _ in range(4))
    make_group(den, top)
    assert add_member(den, top, lead.name, "admin", den.admin_token) == 200
    # An admin of the top group creates the levels below it; others may not.
    for path in (f"{top}/ml", f"{top}/ml/vision"):
        assert den.request("PUT", f"/v1/groups/{path}", token=outsider.token).status == 403
        assert den.request("PUT", f"/v1/groups/{path}", token=lead.token).status == 200
    again = den.request("PUT", f"/v1/groups/{top}/ml", token=lead.token)
    assert (again.status, again.body["error"]) == (409, "exists")
    orphan = den.request("PUT", f"/v1/groups/{top}/none/deeper", token=lead.token)
    assert orphan.status == 404
    assert add_member(den, top, reader.name, "reader", lead.token) == 200
    assert add_member(den, f"{top}/ml/vision", writer.name, "writer", lead.token) == 200
    assert add_member(den, f"{top}/ml", outsider.name, "admin", reader.token) == 403

    deep = f"{top}/ml/vision/model"
    assert save(den, writer, deep) == 200
    assert load(den, reader, deep) == 200  # a reader of the top reads three levels down
    assert save(den, reader, deep) == 403
    assert save(den, writer, f"{top}/ml/other") == 403  # the role holds beneath its group only
    assert load(den, outsider, deep) == 404
    assert save(den, lead, deep) == 200

    group = den.request("GET", f"/v1/groups/{top}/ml/vision", token=reader.token)
    assert group.status == 200
    members = {m["username"]: (m["role"], m["via"]) for m in group.body["members"]}
    assert members == {
        lead.name: ("admin", top),
        reader.name: ("reader", top),
        writer.name: ("writer", f"{top}/ml/vision"),
    }
    assert den.request("GET", f"/v1/groups/{top}/ml", token=outsider.token).status == 404
    who = den.request("GET", "/v1/whoami", token=reader.token).body
    assert who == {
        "username": reader.name,
        "admin": False,
        "groups": [top, f"{top}/ml", f"{top}/ml/vision"],
    }
    # A group grant reaches members of the group and of the groups above it.
    ana = den.new_user()
    save(den, ana, f"{ana.name}/shared")
    assert share(den, ana, f"{ana.name}/shared", [f"/{top}/ml"], "read") == 200
    assert load(den, reader, f"{ana.name}/shared") == 200
    assert load(den, outsider, f"{ana.name}/shared") == 404

    removed = den.request(
        "DELETE",
        f"/v1/group-members/{top}?username={reader.name}",
        token=lead.token,
    )
    assert removed.body == {"removed": True}
    assert load(den, reader, deep) == 404


def test_group_and_user_names_never_collide(den: DenServer) -> None:
    ana = den.new_user()
    clash = den.request("PUT", f"/v1/groups/{ana.name}", token=den.admin_token)
    assert (clash.status, clash.body["error"]) == (409, "name_taken")
    name = unique("grp")
    make_group(den, name)
    taken = den.request("POST", "/v1/users", {"username": name}, token=den.admin_token)
    assert (taken.status, taken.body["error"]) == (409, "name_taken")
    top = den.request("PUT", f"/v1/groups/{unique('g')}", token=ana.token)
    assert top.status == 403
    assert "Den admin" in top.body["message"]


def test_deleting_a_group(den: DenServer) -> None:
    name = unique("gone")
    make_group(den, name)
    make_group(den, f"{name}/sub")
    ana = den.new_user()
    add_member(den, f"{name}/sub", ana.name, "writer", den.admin_token)
    assert save(den, ana, f"{name}/sub/x") == 200
    busy = den.request("DELETE", f"/v1/groups/{name}", token=den.admin_token)
    assert (busy.status, busy.body["error"]) == (409, "exists")
    den.request("DELETE", f"/v1/resources/{name}/sub/x", token=ana.token)
    assert den.request("DELETE", f"/v1/groups/{name}", token=den.admin_token).body == {
        "deleted": True
    }
    assert den.request("GET", f"/v1/groups/{name}/sub", token=den.admin_token).status == 404
    assert den.request("GET", "/v1/whoami", token=ana.token).body["groups"] == []
