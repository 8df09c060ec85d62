"""The audit log on a real Den (SQLite and PostgreSQL): every kind of write leaves one
event with who, what, when and from where; refused and failed writes too; a token that
fails is recorded by its prefix, never in full; only Den admins read the log; the filters;
and ``runhouse den audit``."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest

from runhouse.cli import main
from runhouse.cli.den import since
from tests.den_servers import DenServer, unique


def events(den: DenServer, **query: Any) -> list[dict[str, Any]]:
    """The audit log's events (as Den's admin), newest first."""
    reply = den.request("GET", "/v1/audit?" + urlencode(query), token=den.admin_token)
    assert reply.status == 200, reply
    return list(reply.body["events"])


def prefix_of(token: str) -> str:
    """A token's prefix (``rhd_<prefix>_<secret>``)."""
    return token.split("_")[1]


def test_every_kind_of_write_leaves_one_event(den: DenServer) -> None:
    boss = den.new_user("boss", admin=True)
    ana, org = unique("ana"), unique("org")
    start = datetime.now(timezone.utc)

    def ok(method: str, route: str, body: Any = None, **extra: Any) -> Any:
        reply = (
            den.request(method, route, token=boss.token, **extra)
            if body is None
            else den.request(method, route, body, token=boss.token, **extra)
        )
        assert reply.status == 200, (route, reply)
        return reply.body

    ana_token = ok("POST", "/v1/users", {"username": ana})["token"]
    ok("PUT", f"/v1/groups/{org}")
    ok("PUT", f"/v1/group-members/{org}", {"username": ana, "role": "writer"})
    ok("PUT", f"/v1/group-defaults/{org}", {"defaults": {"gpu": "T4"}})
    ok("PUT", f"/v1/resources/{boss.name}/x", {"config": {"a": 1}})
    ok("PUT", f"/v1/visibility/{boss.name}/x", {"visibility": "public"})
    ok("POST", f"/v1/grants/{boss.name}/x", {"principals": [ana], "access": "read"})
    ok("DELETE", f"/v1/grants/{boss.name}/x", {"principals": None})
    laptop = ok("POST", "/v1/tokens", {"name": "laptop"})
    ok("DELETE", f"/v1/tokens/{laptop['prefix']}")
    ok("PUT", "/v1/defaults", {"defaults": {"autostop_mins": 5}})
    ok("DELETE", f"/v1/resources/{boss.name}/x", headers={"X-Forwarded-For": "203.0.113.9"})
    ok("DELETE", f"/v1/group-members/{org}?username={ana}")
    ok("DELETE", f"/v1/groups/{org}")
    ok("DELETE", f"/v1/users/{ana}")
    ok("GET", "/v1/whoami")
    end = datetime.now(timezone.utc)

    found = list(reversed(events(den, user=boss.name)))
    seen = [(e["action"], e["target"]) for e in found]
    assert seen == [
        ("user.add", ana),
        ("group.create", f"/{org}"),
        ("member.set", f"/{org}"),
        ("group_defaults.set", f"/{org}"),
        ("resource.save", f"/{boss.name}/x"),
        ("visibility.set", f"/{boss.name}/x"),
        ("grant.add", f"/{boss.name}/x"),
        ("grant.remove", f"/{boss.name}/x"),
        ("token.create", boss.name),
        ("token.revoke", boss.name),
        ("defaults.set", boss.name),
        ("resource.delete", f"/{boss.name}/x"),
        ("member.remove", f"/{org}"),
        ("group.delete", f"/{org}"),
        ("user.remove", ana),
        ("login", boss.name),
    ]
    for event in found:
        assert event["actor"] == boss.name
        assert event["outcome"] == "ok"
        assert event["remote"] == "127.0.0.1"  # the socket peer, whatever a header says
        assert start <= datetime.fromisoformat(event["at"]) <= end
        assert event["detail"]["token"] == prefix_of(boss.token)
    details = {e["action"]: e["detail"] for e in found}
    assert details["user.add"]["issued"] == prefix_of(ana_token)
    assert details["member.set"] | {"token": ""} == {"username": ana, "role": "writer", "token": ""}
    assert details["group_defaults.set"]["keys"] == ["gpu"]
    assert details["resource.save"]["version"] == 1
    assert (details["visibility.set"]["visibility"], details["visibility.set"]["was"]) == (
        "public",
        "private",
    )
    assert details["grant.add"]["principals"] == [ana]
    assert details["grant.add"]["access"] == "read"
    assert details["grant.remove"]["removed"] == [ana]
    assert details["token.create"]["issued"] == laptop["prefix"]
    assert details["token.revoke"]["revoked"] == laptop["prefix"]
    assert details["defaults.set"]["keys"] == ["autostop_mins"]
    assert details["resource.delete"]["deleted"] is True
    assert details["user.remove"]["deleted"] is True
    text = json.dumps(found)
    assert ana_token not in text and laptop["token"] not in text and boss.token not in text


def test_refused_and_failed_writes_are_recorded(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    org, newcomer = unique("org"), unique()
    start = datetime.now(timezone.utc)

    def status(method: str, route: str, body: Any = None, token: str | None = None) -> int:
        if body is None:
            return den.request(method, route, token=token).status
        return den.request(method, route, body, token=token).status

    assert status("PUT", f"/v1/resources/{ana.name}/x", {"config": {}}, bo.token) == 403
    assert status("PUT", f"/v1/groups/{org}", None, bo.token) == 403
    assert status("POST", "/v1/users", {"username": newcomer}, bo.token) == 403
    assert status("PUT", f"/v1/resources/{ana.name}/y", {"config": {}}, ana.token) == 200
    again = {"config": {}, "overwrite": False}
    assert status("PUT", f"/v1/resources/{ana.name}/y", again, ana.token) == 409
    assert status("PUT", f"/v1/resources/{ana.name}/z", {"config": {}}) == 401

    bos = events(den, user=bo.name)
    assert [(e["action"], e["target"], e["outcome"]) for e in reversed(bos)] == [
        ("resource.save", f"/{ana.name}/x", "denied"),
        ("group.create", f"/{org}", "denied"),
        ("user.add", newcomer, "denied"),
    ]
    assert all(e["detail"]["status"] == 403 and e["detail"]["error"] == "forbidden" for e in bos)
    anas = events(den, user=ana.name)
    assert [(e["action"], e["outcome"], e["detail"].get("error")) for e in anas] == [
        ("resource.save", "failed", "exists"),
        ("resource.save", "ok", None),
    ]
    anonymous = [
        e
        for e in events(den, since=start.isoformat())
        if e["actor"] is None and e["target"] == f"/{ana.name}/z"
    ]
    assert [(e["action"], e["outcome"], e["detail"]["status"]) for e in anonymous] == [
        ("resource.save", "denied", 401)
    ]


def test_a_failed_token_is_recorded_by_its_prefix_only(den: DenServer) -> None:
    ana = den.new_user()
    start = datetime.now(timezone.utc)
    unknown = f"rhd_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
    assert den.request("GET", "/v1/whoami", token=unknown).status == 401
    # A token pasted where a prefix goes: neither the URL nor the event keeps it.
    assert den.request("DELETE", f"/v1/tokens/{unknown}", token=unknown).status == 401
    revoked = den.request("POST", "/v1/tokens", {"name": "old"}, token=ana.token).body
    den.request("DELETE", f"/v1/tokens/{revoked['prefix']}", token=ana.token)
    tried = den.request(
        "PUT", f"/v1/resources/{ana.name}/x", {"config": {}}, token=revoked["token"]
    )
    assert tried.status == 401
    expired = den.request("POST", "/v1/tokens", {"expires_in_days": 1}, token=ana.token).body
    den.sql(
        "UPDATE tokens SET expires_at = :when WHERE prefix = :prefix",
        when="2000-01-01 00:00:00",
        prefix=expired["prefix"],
    )
    assert den.request("GET", "/v1/tokens", token=expired["token"]).status == 401
    malformed = den.request("GET", "/v1/whoami", headers={"Authorization": f"Basic {unknown}"})
    assert malformed.status == 401
    pasted = den.request("DELETE", f"/v1/tokens/{expired['token']}", token=ana.token)
    assert pasted.status == 404

    recent = [e for e in events(den, since=start.isoformat()) if e["action"] == "token.rejected"]
    prefixes = {prefix_of(unknown), revoked["prefix"], expired["prefix"]}
    mine = [e for e in recent if e["detail"].get("token") in prefixes]
    assert sorted((e["detail"]["reason"], e["actor"], e["detail"]["request"]) for e in mine) == [
        ("expired", ana.name, "GET /v1/tokens"),
        ("revoked", ana.name, f"PUT /v1/resources/{ana.name}/x"),
        ("unknown", None, f"DELETE /v1/tokens/rhd_{prefix_of(unknown)}_..."),
        ("unknown", None, "GET /v1/whoami"),
    ]
    assert all(e["outcome"] == "denied" and e["remote"] == "127.0.0.1" for e in mine)
    assert any(e["detail"] == {"reason": "malformed", "request": "GET /v1/whoami"} for e in recent)
    # The write a revoked token tried is recorded once: as the token that failed.
    assert [e for e in events(den, user=ana.name) if e["action"] == "resource.save"] == []
    revokes = [e for e in events(den, user=ana.name) if e["action"] == "token.revoke"]
    assert [(e["outcome"], e["detail"]["revoked"]) for e in revokes] == [
        ("failed", None),
        ("ok", revoked["prefix"]),
    ]

    full = [unknown, revoked["token"], expired["token"], ana.token]
    secrets_only = [token.split("_", 2)[2] for token in full]
    logged = json.dumps(events(den, limit=10_000))
    stored = " ".join(
        str(value)
        for row in den.sql("SELECT actor, action, target, detail, remote FROM audit_events")
        for value in row
    )
    for text in full + secrets_only:
        assert text not in logged and text not in stored
    if den.db_url.startswith("sqlite"):
        database = den.data_dir / "den.sqlite"
        raw = b"".join(
            path.read_bytes()
            for path in (database, database.with_name("den.sqlite-wal"))
            if path.exists()
        )
        for text in full + secrets_only:
            assert text.encode() not in raw


def test_only_den_admins_read_the_log(den: DenServer) -> None:
    ana = den.new_user()
    refused = den.request("GET", "/v1/audit", token=ana.token)
    assert (refused.status, refused.body["error"]) == (403, "forbidden")
    assert den.request("GET", "/v1/audit").status == 401
    for bad in ("since=yesterday", "limit=0", "limit=10001", "user="):
        assert den.request("GET", f"/v1/audit?{bad}", token=den.admin_token).status == 422, bad
    far = den.request(
        "GET",
        "/v1/audit?" + urlencode({"since": "0001-01-01T00:00:00+14:00"}),
        token=den.admin_token,
    )
    assert far.status == 400


def test_user_since_and_limit_filters(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    save = {"config": {}}
    den.request("PUT", f"/v1/resources/{ana.name}/a", save, token=ana.token)
    middle = datetime.now(timezone.utc)
    den.request("PUT", f"/v1/resources/{ana.name}/b", save, token=ana.token)
    den.request("PUT", f"/v1/resources/{bo.name}/c", save, token=bo.token)
    den.request("PUT", f"/v1/resources/{ana.name}/d", save, token=ana.token)

    everything = [e["target"] for e in events(den, user=ana.name)]
    assert everything == [f"/{ana.name}/d", f"/{ana.name}/b", f"/{ana.name}/a"]
    after = events(den, user=ana.name, since=middle.isoformat())
    assert [e["target"] for e in after] == [f"/{ana.name}/d", f"/{ana.name}/b"]
    naive = events(den, user=ana.name, since=middle.replace(tzinfo=None).isoformat())
    assert naive == after  # no zone means UTC
    assert [e["target"] for e in events(den, user=ana.name, limit=1)] == [f"/{ana.name}/d"]
    both = [e for e in events(den, since=middle.isoformat()) if e["actor"] in (ana.name, bo.name)]
    assert [e["target"] for e in both] == [f"/{ana.name}/d", f"/{bo.name}/c", f"/{ana.name}/b"]
    stamps = [e["at"] for e in events(den, limit=50)]
    assert stamps == sorted(stamps, reverse=True)


def test_the_audit_command(den: DenServer, capsys: pytest.CaptureFixture[str]) -> None:
    ana = den.new_user()
    den.request("PUT", f"/v1/resources/{ana.name}/model", {"config": {}}, token=ana.token)
    den.request("GET", "/v1/whoami", token=ana.token)
    client = ["--den-url", den.url, "--token", den.admin_token]

    assert main(["den", "audit", "--user", ana.name, "--since", "1h", *client]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "AT",
        "(UTC)",
        "ACTOR",
        "ACTION",
        "TARGET",
        "OUTCOME",
        "FROM",
        "DETAIL",
    ]
    assert [line.split()[3:7] for line in lines[1:]] == [
        ["login", ana.name, "ok", "127.0.0.1"],
        ["resource.save", f"/{ana.name}/model", "ok", "127.0.0.1"],
    ]
    assert main(["den", "audit", "--user", ana.name, "--limit", "1", "--json", *client]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [(e["actor"], e["action"]) for e in printed] == [(ana.name, "login")]
    assert main(["den", "audit", "--since", "last week", *client]) == 1
    assert "--since" in capsys.readouterr().err
    as_ana = ["--den-url", den.url, "--token", ana.token]
    assert main(["den", "audit", *as_ana]) == 1
    assert "Den admin" in capsys.readouterr().err


def test_since_takes_ages_and_iso_times() -> None:
    now = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert since("2d", now) == (now - timedelta(days=2)).isoformat()
    assert since("90m", now) == (now - timedelta(minutes=90)).isoformat()
    assert since("2024-05-01T08:00", now) == "2024-05-01T08:00:00+00:00"
    assert since("2024-05-01T08:00+02:00", now) == "2024-05-01T08:00:00+02:00"
    with pytest.raises(ValueError, match="neither an ISO time"):
        since("3 fortnights", now)
