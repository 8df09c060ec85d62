"""Den's cache of facts (tokens, memberships, grants, resources) on a real Den, SQLite and
PostgreSQL: each change made through Den is seen by the very next request, even by a
caller whose answer was just served from the cache; and loads racing saves never answer
a version older than one already saved."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from runhouse.den.access import Access
from runhouse.den.auth import Identity
from runhouse.den.bootstrap import open_database
from runhouse.den.cache import FactCache, ResourceRow, Shelf
from runhouse.den.db import models
from runhouse.den.db.models import now
from runhouse.den.permissions import Caller, Grant
from runhouse.den.settings import DenSettings
from tests.den.test_server_concurrency import race
from tests.den_servers import DenServer, DenUser, Reply, unique


def load(den: DenServer, who: DenUser | None, path: str) -> Reply:
    return den.request("GET", f"/v1/resources/{path}", token=who.token if who else None)


def warm(den: DenServer, who: DenUser | None, path: str) -> dict[str, Any]:
    """Load twice (the second answer comes from the cache once the first filled it)."""
    first, second = load(den, who, path), load(den, who, path)
    assert first.status == second.status == 200, (first, second)
    assert first.body == second.body
    return dict(second.body)


def save(den: DenServer, who: DenUser, path: str, config: dict[str, Any]) -> int:
    reply = den.request("PUT", f"/v1/resources/{path}", {"config": config}, token=who.token)
    assert reply.status == 200, reply
    return int(reply.body["version"])


def ok(reply: Reply) -> Reply:
    assert reply.status == 200, reply
    return reply


def test_a_revoked_grant_hides_the_resource_at_once(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    path = f"{ana.name}/model"
    save(den, ana, path, {"v": 1})
    assert load(den, bo, path).status == 404  # the empty grants are cached too
    grant = {"principals": [bo.name], "access": "read"}
    ok(den.request("POST", f"/v1/grants/{ana.name}", grant, token=ana.token))
    assert warm(den, bo, path)["config"] == {"v": 1}
    revoke = {"principals": [bo.name]}
    ok(den.request("DELETE", f"/v1/grants/{ana.name}", revoke, token=ana.token))
    assert load(den, bo, path).status == 404


def test_a_deny_beats_a_cached_allow_at_once(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    path = f"{ana.name}/shared/model"
    save(den, ana, path, {"v": 1})
    share = {"principals": [bo.name], "access": "read"}
    ok(den.request("POST", f"/v1/grants/{ana.name}/shared", share, token=ana.token))
    warm(den, bo, path)
    deny = {"principals": [bo.name], "access": "deny"}
    ok(den.request("POST", f"/v1/grants/{path}", deny, token=ana.token))
    assert load(den, bo, path).status == 404


def test_a_removed_membership_or_lowered_role_counts_at_once(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    group = unique("g")
    ok(den.request("PUT", f"/v1/groups/{group}", token=den.admin_token))
    for who, role in ((ana, "admin"), (bo, "writer")):
        body = {"username": who.name, "role": role}
        ok(den.request("PUT", f"/v1/group-members/{group}", body, token=den.admin_token))
    path = f"{group}/model"
    save(den, ana, path, {"v": 1})
    warm(den, bo, path)
    assert save(den, bo, path, {"v": 2}) == 2
    lower = {"username": bo.name, "role": "reader"}
    ok(den.request("PUT", f"/v1/group-members/{group}", lower, token=ana.token))
    refused = den.request("PUT", f"/v1/resources/{path}", {"config": {}}, token=bo.token)
    assert refused.status == 403
    assert warm(den, bo, path)["version"] == 2
    removed = den.request(
        "DELETE", f"/v1/group-members/{group}?username={bo.name}", token=ana.token
    )
    assert ok(removed).body == {"removed": True}
    assert load(den, bo, path).status == 404


def test_a_revoked_token_is_refused_at_once(den: DenServer) -> None:
    ana = den.new_user()
    path = f"{ana.name}/model"
    save(den, ana, path, {"v": 1})
    second = ok(den.request("POST", "/v1/tokens", {"name": "second"}, token=ana.token)).body
    other = DenUser(ana.name, second["token"])
    warm(den, other, path)
    ok(den.request("DELETE", f"/v1/tokens/{second['prefix']}", token=ana.token))
    refused = load(den, other, path)
    assert refused.status == 401
    assert "revoked" in refused.body["message"]
    assert warm(den, ana, path)["version"] == 1  # the user's other token still works


def test_a_deleted_user_is_refused_at_once(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    path = f"{ana.name}/model"
    save(den, ana, path, {"v": 1})
    ok(
        den.request(
            "POST",
            f"/v1/grants/{path}",
            {"principals": [bo.name], "access": "read"},
            token=ana.token,
        )
    )
    warm(den, bo, path)
    ok(den.request("DELETE", f"/v1/users/{bo.name}", token=den.admin_token))
    refused = load(den, bo, path)
    assert refused.status == 401
    assert "not known" in refused.body["message"]
    # A new user of the same name starts with nothing: neither the old token nor the grant.
    again = DenUser(bo.name, den.create_user(bo.name))
    assert load(den, again, path).status == 404
    assert load(den, bo, path).status == 401


def test_a_deleted_or_resaved_resource_is_seen_at_once(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    path = f"{ana.name}/model"
    save(den, ana, path, {"v": 1})
    ok(
        den.request(
            "POST",
            f"/v1/grants/{path}",
            {"principals": [bo.name], "access": "read"},
            token=ana.token,
        )
    )
    warm(den, bo, path)
    assert save(den, ana, path, {"v": 2}) == 2
    assert load(den, bo, path).body["config"] == {"v": 2}  # a save by someone else
    warm(den, ana, path)
    assert ok(den.request("DELETE", f"/v1/resources/{path}", token=ana.token)).body == {
        "deleted": True
    }
    assert load(den, ana, path).status == 404
    assert load(den, bo, path).status == 404
    assert save(den, ana, path, {"v": "new"}) == 1
    answer = warm(den, ana, path)
    assert (answer["version"], answer["config"]) == (1, {"v": "new"})


def test_a_visibility_change_is_seen_at_once(den: DenServer) -> None:
    ana = den.new_user()
    path = f"{ana.name}/model"
    save(den, ana, path, {"v": 1})
    assert load(den, None, path).status == 404
    public = {"visibility": "public"}
    ok(den.request("PUT", f"/v1/visibility/{path}", public, token=ana.token))
    assert warm(den, None, path)["visibility"] == "public"
    private = {"visibility": "private"}
    ok(den.request("PUT", f"/v1/visibility/{path}", private, token=ana.token))
    assert load(den, None, path).status == 404
    assert warm(den, ana, path)["visibility"] == "private"


def test_only_a_den_admin_clears_the_cache(den: DenServer) -> None:
    ana = den.new_user()
    assert den.request("DELETE", "/v1/cache").status == 401
    assert den.request("DELETE", "/v1/cache", token=ana.token).status == 403
    assert ok(den.request("DELETE", "/v1/cache", token=den.admin_token)).body == {"cleared": True}


def test_loads_racing_saves_never_answer_an_older_version(den: DenServer) -> None:
    ana, bo = den.new_user(), den.new_user()
    path = f"{ana.name}/busy"
    save(den, ana, path, {"n": 0})
    ok(
        den.request(
            "POST",
            f"/v1/grants/{path}",
            {"principals": [bo.name], "access": "read"},
            token=ana.token,
        )
    )
    saved = [1]  # the newest version whose save was answered
    lock = threading.Lock()
    stale: list[tuple[int, int]] = []

    def work(i: int) -> None:
        for n in range(15):
            if i % 2 == 0:
                version = save(den, ana, path, {"n": n, "by": i})
                with lock:
                    saved[0] = max(saved[0], version)
            else:
                with lock:
                    floor = saved[0]
                reply = load(den, bo if i % 4 == 1 else ana, path)
                assert reply.status == 200, reply
                if reply.body["version"] < floor:
                    stale.append((reply.body["version"], floor))

    race(8, work)
    assert stale == []
    assert warm(den, bo, path)["version"] == 1 + 4 * 15


def test_a_fill_that_read_before_a_write_committed_is_not_kept() -> None:
    cache = FactCache()
    row = ResourceRow(1, "ana", "private", 1)
    before = cache.ticket()
    cache.committed({("resource", "ana/x")})  # a save of ana/x committed meanwhile
    assert not cache.resources.keep("ana/x", row, before)
    assert cache.resources.keep("ana/y", row, before)  # another resource: kept
    assert cache.resources.keep("ana/x", row, cache.ticket())
    before = cache.ticket()
    cache.committed({"grants"})  # a table: every fill of its shelves that began before
    assert not cache.grants.keep("ana", (), before)
    assert cache.memberships.keep(1, (), before)  # grants feed no other shelf
    assert cache.resources.get("ana/x") == row
    cache.committed({"a_table_den_does_not_know"})  # could feed anything: all dropped
    assert (cache.resources.get("ana/x"), cache.memberships.get(1)) == (None, None)


def test_shelves_keep_within_their_bounds() -> None:
    cache = FactCache()
    shelf: Shelf[str, ResourceRow] = Shelf(cache.clock, limit=3, budget=1000, size=len_of)
    for n in range(5):
        assert shelf.keep(f"r{n}", ResourceRow(n, None, "private", 1, b"x" * 100), 0)
    assert len(shelf) == 3 and shelf.get("r0") is None and shelf.get("r4") is not None
    assert shelf.keep("big", ResourceRow(9, None, "private", 1, b"x" * 240), 0)
    assert not shelf.keep("huge", ResourceRow(9, None, "private", 1, b"x" * 300), 0)
    assert sum(len_of(r) for r in (shelf.get(k) for k in ("r3", "r4", "big")) if r) <= 1000


def len_of(row: ResourceRow) -> int:
    return len(row.body or b"")


def test_a_session_that_wrote_fills_nothing(tmp_path: Path) -> None:
    db = open_database(DenSettings(data_dir=tmp_path))
    bo = Identity(Caller("bo"), user_id=2)
    grant = {"path": "ana", "principal": "bo", "access": "read", "created": now()}
    try:
        with db.session(write=True) as session:
            session.execute(insert(models.Grant), grant)
            # The session sees its own write, which it may yet roll back: not for the cache.
            seen = Access(session, bo, db.cache).grants_on(("ana", "x"))
            assert seen == (Grant(("ana",), "bo", "read"),)
            session.rollback()
        assert db.cache.grants.get("ana") is None
        with db.session() as session:
            assert Access(session, bo, db.cache).grants_on(("ana", "x")) == ()
        assert (db.cache.grants.get("ana"), db.cache.grants.get("ana/x")) == ((), ())
    finally:
        db.close()
