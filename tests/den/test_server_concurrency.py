"""Saves of one name at the same moment, on a real Den (SQLite and PostgreSQL): from
threads and from processes, every version is kept, numbered without gaps; with
``expected_version`` exactly one of the racing saves wins."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Callable

from tests.den_servers import DenServer, Reply
from tests.processes import run_together

THREADS = 8
SAVES_EACH = 5


def race(workers: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``workers`` threads released at the same moment."""
    gate = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            gate.wait(timeout=60)
            work(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def test_concurrent_saves_from_threads_keep_every_version(den: DenServer) -> None:
    ana = den.new_user()
    route = f"/v1/resources/{ana.name}/busy"
    got: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for n in range(SAVES_EACH):
            reply = den.request("PUT", route, {"config": {"who": i, "n": n}}, token=ana.token)
            assert reply.status == 200, reply
            with lock:
                got.append(reply.body["version"])

    race(THREADS, work)
    total = THREADS * SAVES_EACH
    assert sorted(got) == list(range(1, total + 1))
    history = den.request("GET", f"/v1/history/{ana.name}/busy", token=ana.token).body["versions"]
    assert [v["version"] for v in history] == list(range(total, 0, -1))
    saved = sorted((v["config"]["who"], v["config"]["n"]) for v in history)
    assert saved == [(i, n) for i in range(THREADS) for n in range(SAVES_EACH)]


def test_concurrent_saves_from_processes_keep_every_version(den: DenServer) -> None:
    ana = den.new_user()
    route = f"/v1/resources/{ana.name}/procs"
    script = textwrap.dedent(
        f"""
        import json, sys, urllib.request
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range({SAVES_EACH}):
            body = json.dumps({{"config": {{"who": sys.argv[1], "n": n}}}}).encode()
            request = urllib.request.Request(
                {den.url + route!r}, data=body, method="PUT",
                headers={{"Authorization": "Bearer {ana.token}",
                          "Content-Type": "application/json"}},
            )
            urllib.request.urlopen(request, timeout=60).read()
        """
    )
    workers = 4
    run_together([[sys.executable, "-c", script, str(i)] for i in range(workers)])
    history = den.request("GET", f"/v1/history/{ana.name}/procs", token=ana.token).body["versions"]
    total = workers * SAVES_EACH
    assert [v["version"] for v in history] == list(range(total, 0, -1))
    assert sorted((v["config"]["who"], v["config"]["n"]) for v in history) == [
        (str(i), n) for i in range(workers) for n in range(SAVES_EACH)
    ]


def cas_race(den: DenServer, token: str, route: str, expected: int) -> list[Reply]:
    """Every thread saves with ``expected_version=expected`` at the same moment."""
    replies: list[Reply] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        body = {"config": {"who": i}, "expected_version": expected}
        reply = den.request("PUT", route, body, token=token)
        with lock:
            replies.append(reply)

    race(THREADS, work)
    return replies


def test_with_expected_version_exactly_one_racer_wins(den: DenServer) -> None:
    ana = den.new_user()
    route = f"/v1/resources/{ana.name}/cas"
    for expected in (0, 1):  # a first save, then a save over version 1
        replies = cas_race(den, ana.token, route, expected)
        wins = [r for r in replies if r.status == 200]
        losses = [r for r in replies if r.status != 200]
        assert len(wins) == 1, [json.dumps(r.body) for r in replies]
        assert wins[0].body["version"] == expected + 1
        assert {(r.status, r.body["error"], r.body["current_version"]) for r in losses} == {
            (409, "version_conflict", expected + 1)
        }
    history = den.request("GET", f"/v1/history/{ana.name}/cas", token=ana.token).body["versions"]
    assert [v["version"] for v in history] == [2, 1]
