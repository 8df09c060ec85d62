"""den_auth: one cluster daemon shared by a team, each member calling it with their own Den
token. A real Den, a real daemon of the test's own (started by its owner's ``Cluster`` with
``den_auth=True``), and real users with homes of their own; a teammate's calls go through
a ``Cluster`` in a process of their own, or straight to the daemon's HTTP API."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import runhouse as rh
from runhouse.client import local_daemon
from tests.den_servers import DenServer, start_den
from tests.names.den_people import Person, admin, become, person, unique

BOUND = 30.0  # seconds: a bound on waiting for a condition, never a timing claim
REPO = Path(__file__).parents[2]


def add(a: int, b: int) -> int:
    return a + b


@dataclass
class Shared:
    """A den_auth cluster, owned by ``owner``, and its running daemon."""

    cluster: rh.Cluster
    owner: Person
    port: int
    token: str  # the daemon's own token
    root: Path

    @property
    def address(self) -> str:
        return str(self.cluster.rns_address)

    def ask(self, token: str | None, path: str = "/_rh/keys") -> tuple[int, Any]:
        """One request with ``token``; its status and JSON body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=BOUND)
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    return tmp_path / "homes"


@pytest.fixture
def share_cluster(
    own_daemon_dir: Path, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Shared]:
    """Start a den_auth cluster owned by a new user of ``den`` (the daemon keeps Den's
    answers ``ttl`` seconds); the daemon is stopped by its PID at the end (own_daemon_dir)."""

    def start(den: DenServer, ttl: int) -> Shared:
        owner = person(den, homes)
        become(monkeypatch, owner)
        monkeypatch.setenv("RH_DEN_AUTH_TTL", str(ttl))
        name = f"/{owner.name}/clusters/c"
        c = rh.cluster(name=name, server_port=0, den_auth=True).save()
        c.up_if_not()
        files = local_daemon.files_for(own_daemon_dir)
        info = files.read_info()
        assert info is not None and info["den_resource"] == name
        token = files.read_token()
        assert token is not None
        return Shared(c, owner, int(info["port"]), token, own_daemon_dir)

    return start


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (bounded)."""
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)  # the polling interval: the condition is what is waited on


def as_teammate(who: Person, shared: Shared, project: Path) -> subprocess.CompletedProcess[str]:
    """Call ``add`` on the shared cluster through a ``Cluster`` loaded from Den, in a process
    with ``who``'s home (config and token)."""
    script = textwrap.dedent(
        f"""
        import runhouse as rh
        from tests.daemon.test_den_auth import add
        c = rh.cluster(name="{shared.address}")
        assert c.den_auth
        try:
            print(rh.function(add).to(c)(1, 2))
        except rh.AuthError as exc:
            print("refused", exc.status, exc)
        print("token", c._connected(autostart=False).token == {who.token!r})
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RH_")}
    env.update(HOME=str(who.home), RH_DAEMON_DIR=str(shared.root), PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def no_write(user: str, shared: Shared) -> str:
    return (
        f"user {user} has no write access to cluster {shared.address} in Den; ask its owner "
        f"to share it: c.share([{user!r}], access_level='write')"
    )


def test_the_owner_and_whoever_may_write_the_cluster_share_its_daemon(
    den_sqlite: DenServer,
    share_cluster: Callable[..., Shared],
    homes: Path,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = share_cluster(den_sqlite, ttl=1)
    alice, c = shared.owner, shared.cluster
    bob = person(den_sqlite, homes)

    # The owner, logged in, calls with her Den token, not the daemon's.
    assert rh.function(add).to(c)(2, 3) == 5
    assert c._connected(autostart=False).token == alice.token

    status, body = shared.ask(bob.token)
    assert (status, body["error"]["message"]) == (403, no_write(bob.name, shared))

    c.share([bob.name], access_level="read")  # he may load the cluster, not use it
    teammate = as_teammate(bob, shared, project)
    assert teammate.returncode == 0, teammate.stderr
    assert "refused 403" in teammate.stdout and no_write(bob.name, shared) in teammate.stdout

    c.share([bob.name], access_level="write")
    wait_for(lambda: shared.ask(bob.token)[0] == 200, "bob let in (a refusal is kept 1 s)")
    teammate = as_teammate(bob, shared, project)
    assert teammate.returncode == 0, teammate.stderr
    assert teammate.stdout.split() == ["3", "token", "True"]  # sent his own Den token

    c.revoke([bob.name])
    wait_for(lambda: shared.ask(bob.token)[0] == 403, "bob refused once the ttl passed")

    # A group bob is in, given write on the folder above the cluster, lets him in too.
    group = unique("team")
    den = admin(den_sqlite)
    den.request("PUT", f"/v1/groups/{group}")
    den.request("PUT", f"/v1/group-members/{group}", {"username": bob.name, "role": "reader"})
    folder = f"/v1/grants/{alice.name}/clusters"
    den.request("POST", folder, {"principals": [f"/{group}"], "access": "write"})
    wait_for(lambda: shared.ask(bob.token)[0] == 200, "bob let in through his group")
    den.request("DELETE", f"/v1/group-members/{group}", params={"username": bob.name})
    wait_for(lambda: shared.ask(bob.token)[0] == 403, "bob refused once out of the group")
    den.close()

    # The daemon's own token goes in as before; anything else is refused as before.
    assert shared.ask(shared.token)[0] == 200
    assert shared.ask(None)[0] == 401
    status, body = shared.ask("not-a-den-token")
    assert status == 403 and "wrong token for this daemon" in body["error"]["message"]
    become(monkeypatch, alice)
    assert c.keys() == ["add"]


def test_a_revoked_or_expired_den_token_is_refused_with_401(
    den_sqlite: DenServer, share_cluster: Callable[..., Shared], homes: Path
) -> None:
    shared = share_cluster(den_sqlite, ttl=0)
    carol = person(den_sqlite, homes)
    shared.cluster.share([carol.name], access_level="write")
    assert shared.ask(carol.token)[0] == 200

    den = admin(den_sqlite)
    second = den.request("POST", "/v1/tokens", {"username": carol.name, "expires_in_days": 1}).body
    den.close()
    assert shared.ask(second["token"])[0] == 200
    # A day cannot pass in a test: move the expiry into the past in Den's database.
    den_sqlite.sql(
        "UPDATE tokens SET expires_at = :when WHERE prefix = :prefix",
        when="2000-01-01 00:00:00",
        prefix=second["prefix"],
    )
    status, body = shared.ask(second["token"])
    assert (
        status == 401 and f"Den at {den_sqlite.url} refused the token" in body["error"]["message"]
    )
    assert "expired" in body["error"]["message"]

    prefix = carol.token.split("_")[1]
    assert den_sqlite.request("DELETE", f"/v1/tokens/{prefix}", token=carol.token).status == 200
    status, body = shared.ask(carol.token)
    assert status == 401 and "revoked" in body["error"]["message"]


def test_connections_of_admitted_callers_stay_open_and_of_refused_ones_close(
    den_sqlite: DenServer, share_cluster: Callable[..., Shared], homes: Path
) -> None:
    shared = share_cluster(den_sqlite, ttl=30)
    dave, erin = person(den_sqlite, homes), person(den_sqlite, homes)
    shared.cluster.share([dave.name], access_level="write")

    def two_requests(token: str) -> list[tuple[int, str | None]]:
        conn = http.client.HTTPConnection("127.0.0.1", shared.port, timeout=BOUND)
        answers = []
        try:
            for _ in range(2):
                conn.request("GET", "/_rh/keys", headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                answers.append((response.status, response.getheader("connection")))
                if response.will_close:
                    break
        finally:
            conn.close()
        return answers

    assert two_requests(dave.token) == [(200, None), (200, None)]
    assert two_requests(erin.token) == [(403, "close")]


def test_without_den_the_daemon_answers_503_and_its_own_token_still_works(
    tmp_path: Path, share_cluster: Callable[..., Shared], homes: Path
) -> None:
    den = start_den(tmp_path / "den")
    try:
        shared = share_cluster(den, ttl=3600)
        frank, gina = person(den, homes), person(den, homes)
        shared.cluster.share([frank.name], access_level="write")
        assert shared.ask(frank.token)[0] == 200
        # Kept for the ttl: a revocation is seen once it passes, not before.
        shared.cluster.revoke([frank.name])
        assert shared.ask(frank.token)[0] == 200
    finally:
        den.stop()
    assert shared.ask(frank.token)[0] == 200  # a kept answer needs no Den
    status, body = shared.ask(gina.token)
    assert status == 503 and body["error"]["den_url"] == den.url
    assert f"Den at {den.url}" in body["error"]["message"]
    assert "own token still works" in body["error"]["message"]
    assert shared.ask(shared.token)[0] == 200


def test_a_cluster_must_be_saved_in_den_before_its_daemon_checks_callers_there(
    den_sqlite: DenServer, own_daemon_dir: Path, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = person(den_sqlite, homes)
    become(monkeypatch, owner)
    unsaved = rh.cluster(name=f"/{owner.name}/clusters/new", server_port=0, den_auth=True)
    with pytest.raises(rh.DaemonError, match=r"Save the cluster there first: c\.save\(\)"):
        unsaved.up_if_not()
    local = rh.cluster(name="~/mine", server_port=0, den_auth=True)
    with pytest.raises(rh.DaemonError, match="save it under a Den folder first"):
        local.up_if_not()
    assert local_daemon.files_for(own_daemon_dir).read_info() is None


def test_den_answers_access_to_a_path_without_revealing_it(den_sqlite: DenServer) -> None:
    owner, other = den_sqlite.new_user("o"), den_sqlite.new_user("x")
    saved = f"{owner.name}/clusters/c"
    put = den_sqlite.request("PUT", f"/v1/resources/{saved}", {"config": {}}, token=owner.token)
    assert put.status == 200

    def access(path: str, token: str | None) -> tuple[int, Any]:
        reply = den_sqlite.request("GET", f"/v1/access/{path}", token=token)
        return reply.status, reply.body

    mine = {"username": owner.name, "read": True, "write": True}
    assert access(saved, owner.token) == (200, mine)
    nothing = {"username": other.name, "read": False, "write": False}
    assert access(saved, other.token) == (200, nothing)
    assert access(f"{owner.name}/clusters/missing", other.token) == (200, nothing)
    den_sqlite.request(
        "POST",
        f"/v1/grants/{saved}",
        {"principals": [other.name], "access": "read"},
        token=owner.token,
    )
    assert access(saved, other.token) == (200, {**nothing, "read": True})
    assert access(saved, None)[0] == 401
    assert access(saved, "rhd_abcdefgh_nope")[0] == 401
    assert access("bad%20path!", owner.token)[0] == 400
