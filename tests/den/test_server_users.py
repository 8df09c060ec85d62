"""Users and tokens on a real Den (SQLite and PostgreSQL): who may manage them, what lists
show, revoked and expired tokens, and that no token is ever stored in clear."""

from __future__ import annotations

import hashlib
import re

from tests.den_servers import DenServer, unique


def test_users_are_managed_by_den_admins_only(den: DenServer) -> None:
    name = unique()
    made = den.request("POST", "/v1/users", {"username": name}, token=den.admin_token)
    assert made.status == 200
    assert made.body["username"] == name
    assert re.fullmatch(r"rhd_[a-z0-9]{8}_[A-Za-z0-9_\-]{20,}", made.body["token"])
    again = den.request("POST", "/v1/users", {"username": name}, token=den.admin_token)
    assert (again.status, again.body["error"]) == (409, "exists")
    token = made.body["token"]
    who = den.request("GET", "/v1/whoami", token=token)
    assert who.body == {"username": name, "admin": False, "groups": []}
    for method, route, body in (
        ("POST", "/v1/users", {"username": unique()}),
        ("GET", "/v1/users", None),
        ("DELETE", f"/v1/users/{name}", None),
    ):
        refused = (
            den.request(method, route, body, token=token)
            if body
            else den.request(method, route, token=token)
        )
        assert refused.status == 403, route
        assert "Den admin" in refused.body["message"]
    assert den.request("GET", "/v1/users").status == 401
    users = den.request("GET", "/v1/users", token=den.admin_token).body["users"]
    mine = next(u for u in users if u["username"] == name)
    assert mine["admin"] is False and mine["created"]
    assert [u["username"] for u in users] == sorted(u["username"] for u in users)
    bad = den.request("POST", "/v1/users", {"username": "no/slash"}, token=den.admin_token)
    assert bad.status == 400


def test_removing_a_user_revokes_their_tokens(den: DenServer) -> None:
    ana = den.new_user()
    assert den.request("GET", "/v1/whoami", token=ana.token).status == 200
    gone = den.request("DELETE", f"/v1/users/{ana.name}", token=den.admin_token)
    assert gone.body == {"deleted": True}
    assert den.request("GET", "/v1/whoami", token=ana.token).status == 401
    assert den.request("DELETE", f"/v1/users/{ana.name}", token=den.admin_token).body == {
        "deleted": False
    }
    me = den.request("DELETE", "/v1/users/admin", token=den.admin_token)
    assert me.status == 400


def test_tokens_list_prefixes_and_revoke(den: DenServer) -> None:
    ana = den.new_user()
    made = den.request("POST", "/v1/tokens", {"name": "laptop"}, token=ana.token)
    assert made.status == 200
    second = made.body["token"]
    assert second.startswith(f"rhd_{made.body['prefix']}_")
    assert (made.body["name"], made.body["expires_at"]) == ("laptop", None)
    listing = den.request("GET", "/v1/tokens", token=second)
    assert listing.status == 200
    assert [t["name"] for t in listing.body["tokens"]] == ["first token", "laptop"]
    assert second not in listing.raw.decode() and ana.token not in listing.raw.decode()
    assert all(
        set(t) == {"prefix", "name", "created", "expires_at", "revoked"}
        for t in listing.body["tokens"]
    )
    assert den.request("DELETE", f"/v1/tokens/{made.body['prefix']}", token=ana.token).body == {
        "revoked": True
    }
    refused = den.request("GET", "/v1/whoami", token=second)
    assert refused.status == 401
    assert "revoked" in refused.body["message"]
    assert den.request("GET", "/v1/whoami", token=ana.token).status == 200
    states = {
        t["name"]: t["revoked"]
        for t in den.request("GET", "/v1/tokens", token=ana.token).body["tokens"]
    }
    assert states == {"first token": False, "laptop": True}


def test_tokens_of_others(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    refused = den.request("POST", "/v1/tokens", {"username": bo.name}, token=ana.token)
    assert refused.status == 403
    by_admin = den.request("POST", "/v1/tokens", {"username": bo.name}, token=den.admin_token)
    assert by_admin.status == 200
    bo_token = by_admin.body["token"]
    assert den.request("GET", "/v1/whoami", token=bo_token).body["username"] == bo.name
    prefix = by_admin.body["prefix"]
    assert den.request("DELETE", f"/v1/tokens/{prefix}", token=ana.token).status == 404
    assert den.request("DELETE", f"/v1/tokens/{prefix}", token=den.admin_token).status == 200
    assert den.request("GET", "/v1/whoami", token=bo_token).status == 401


def test_an_expired_token_is_401_saying_so(den: DenServer) -> None:
    ana = den.new_user()
    made = den.request(
        "POST", "/v1/tokens", {"name": "short", "expires_in_days": 1}, token=ana.token
    ).body
    assert made["expires_at"]
    short = made["token"]
    assert den.request("GET", "/v1/whoami", token=short).status == 200
    # A day cannot pass in a test: move the expiry into the past in Den's database.
    den.sql(
        "UPDATE tokens SET expires_at = :when WHERE prefix = :prefix",
        when="2000-01-01 00:00:00",
        prefix=made["prefix"],
    )
    expired = den.request("GET", "/v1/whoami", token=short)
    assert expired.status == 401
    assert expired.body["error"] == "unauthenticated"
    assert "expired on 2000-01-01" in expired.body["message"]
    assert "new token" in expired.body["message"]
    bad = den.request("POST", "/v1/tokens", {"expires_in_days": 0}, token=ana.token)
    assert bad.status == 422


def test_tokens_are_stored_hashed(den: DenServer) -> None:
    ana = den.new_user()
    rows = den.sql(
        "SELECT t.prefix, t.hash FROM tokens t JOIN users u ON u.id = t.user_id "
        "WHERE u.username = :name",
        name=ana.name,
    )
    assert [(prefix, digest) for prefix, digest in rows] == [
        (ana.token.split("_")[1], hashlib.sha256(ana.token.encode()).hexdigest())
    ]
    if den.db_url.startswith("sqlite"):
        database = den.data_dir / "den.sqlite"
        stored = b"".join(
            path.read_bytes()
            for path in (database, database.with_name("den.sqlite-wal"))
            if path.exists()
        )
        assert ana.token.encode() not in stored
        assert den.admin_token.encode() not in stored
        secret = ana.token.split("_", 2)[2]
        assert secret.encode() not in stored
