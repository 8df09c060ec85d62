"""Secrets' values on a real Den (SQLite and PostgreSQL): kept sealed beside the secret's
config, served to who may read the config (and recorded in the audit log, without values),
answered as missing to anyone else; never in clear in Den's database files, a dump, its log
or its answers' errors; a wrong master key or an altered row is a clear error while Den
goes on serving; rotating the master key re-wraps data keys and leaves ciphertexts alone."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runhouse.den import crypto
from tests.den_servers import DenServer, DenUser, den_command, den_env, start_den, unique

SECRET_CONFIG = {"resource_type": "secret", "resource_subtype": "Secret"}
ROTATE = [sys.executable, "-m", "runhouse", "den", "rotate-master-key"]


@pytest.fixture
def marker() -> str:
    """A value that must never show outside the values' own answer."""
    return f"rhmark{secrets.token_hex(8)}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """For a Den of the test's own: its default SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("fresh_postgres_db")


def save_secret(den: DenServer, user: DenUser, name: str, values: dict[str, str]) -> str:
    """Save a secret's config as a new version and its values under that version; its path."""
    path = f"{user.name}/{name}"
    saved = den.request(
        "PUT",
        f"/v1/resources/{path}",
        {"config": {**SECRET_CONFIG, "name": "/" + path}},
        token=user.token,
    )
    assert saved.status == 200, saved
    version = saved.body["version"]
    put = den.request(
        "PUT", f"/v1/secret-values/{path}?version={version}", {"values": values}, token=user.token
    )
    assert put.status == 200 and put.body == {"version": version}, put
    return path


def read(den: DenServer, path: str, token: str | None, version: int | None = None) -> Any:
    """GET the values (the raw reply)."""
    query = f"?version={version}" if version is not None else ""
    return den.request("GET", f"/v1/secret-values/{path}{query}", token=token)


def events(den: DenServer, **query: str) -> list[dict[str, Any]]:
    """The audit log's events (as Den's admin), newest first."""
    from urllib.parse import urlencode

    reply = den.request("GET", "/v1/audit?" + urlencode(query), token=den.admin_token)
    assert reply.status == 200, reply
    return list(reply.body["events"])


def rows(den: DenServer, path: str) -> list[tuple[Any, ...]]:
    """The stored rows of a secret's values: (version, ciphertext, nonce, wrapped_key, key_id)."""
    found = den.sql(
        "SELECT v.version, v.ciphertext, v.nonce, v.wrapped_key, v.key_id "
        "FROM secret_values v JOIN resources r ON r.id = v.resource_id "
        "WHERE r.path = :path ORDER BY v.version",
        path=path,
    )
    return [(n, bytes(c), bytes(o), bytes(w), k) for n, c, o, w, k in found]


def test_values_are_kept_per_version_and_come_back(den: DenServer, marker: str) -> None:
    ana = den.new_user("ana")
    path = save_secret(den, ana, "openai", {"OPENAI_API_KEY": f"one-{marker}"})
    save_secret(den, ana, "openai", {"OPENAI_API_KEY": f"two-{marker}", "ORG": "é\n%"})
    assert read(den, path, ana.token, 1).body == {
        "version": 1,
        "values": {"OPENAI_API_KEY": f"one-{marker}"},
    }
    newest = read(den, path, ana.token).body
    assert newest == {"version": 2, "values": {"OPENAI_API_KEY": f"two-{marker}", "ORG": "é\n%"}}
    stored = rows(den, path)
    assert [r[0] for r in stored] == [1, 2]
    assert len({r[3] for r in stored}) == 2  # a data key of its own per version
    assert all(marker.encode() not in b"".join(r[1:4]) for r in stored)


def test_a_version_is_set_once_and_must_exist(den: DenServer, marker: str) -> None:
    ana = den.new_user("ana")
    path = save_secret(den, ana, "k", {"K": marker})
    again = den.request(
        "PUT", f"/v1/secret-values/{path}?version=1", {"values": {"K": "x"}}, token=ana.token
    )
    assert again.status == 409 and again.body["error"] == "exists"
    ahead = den.request(
        "PUT", f"/v1/secret-values/{path}?version=2", {"values": {"K": "x"}}, token=ana.token
    )
    assert ahead.status == 404 and "has no version 2" in ahead.body["message"]
    nothing = den.request(
        "PUT",
        f"/v1/secret-values/{ana.name}/none?version=1",
        {"values": {"K": "x"}},
        token=ana.token,
    )
    assert nothing.status == 404 and "save the secret's config first" in nothing.body["message"]
    assert read(den, path, ana.token, 3).status == 404
    bad = den.request(
        "PUT", f"/v1/secret-values/{path}?version=2", {"values": {"K": 3}}, token=ana.token
    )
    assert bad.status == 422
    assert read(den, path, ana.token, 1).body["values"] == {"K": marker}  # unchanged


def test_another_users_secret_is_not_found_and_writes_are_forbidden(
    den: DenServer, marker: str
) -> None:
    ana, bo = den.new_user("ana"), den.new_user("bo")
    path = save_secret(den, ana, "aws", {"secret_key": marker})
    hidden = read(den, path, bo.token)
    missing = read(den, f"{ana.name}/zzz", bo.token)
    assert hidden.status == missing.status == 404
    assert hidden.body == {
        "error": "not_found",
        "message": missing.body["message"].replace("/zzz ", "/aws "),
    }
    put = den.request(
        "PUT", f"/v1/secret-values/{path}?version=1", {"values": {"K": "x"}}, token=bo.token
    )
    assert put.status == 403
    assert den.request("DELETE", f"/v1/secret-values/{path}", token=bo.token).status == 403
    assert read(den, path, None).status == 401  # never to anonymous callers
    assert (
        den.request(
            "PUT", f"/v1/visibility/{path}", {"visibility": "public"}, token=ana.token
        ).status
        == 200
    )
    public = read(den, path, None)
    assert public.status == 401 and "logged-in users only" in public.body["message"]
    assert read(den, path, bo.token).body["values"] == {"secret_key": marker}  # public: read


def test_sharing_with_a_group_lets_its_members_read_until_revoked(
    den: DenServer, marker: str
) -> None:
    ana, bo = den.new_user("ana"), den.new_user("bo")
    team = unique("team")
    admin = den.admin_token
    assert den.request("PUT", f"/v1/groups/{team}", token=admin).status == 200
    member = {"username": bo.name, "role": "reader"}
    assert den.request("PUT", f"/v1/group-members/{team}", member, token=admin).status == 200
    path = save_secret(den, ana, "hf", {"token": marker})
    assert read(den, path, bo.token).status == 404
    grant = {"principals": [f"/{team}"], "access": "read"}
    assert den.request("POST", f"/v1/grants/{path}", grant, token=ana.token).status == 200
    assert read(den, path, bo.token).body["values"] == {"token": marker}
    assert (
        den.request(
            "PUT", f"/v1/secret-values/{path}?version=1", {"values": {"t": "x"}}, token=bo.token
        ).status
        == 403
    )  # read, not write
    assert (
        den.request("DELETE", f"/v1/grants/{path}", {"principals": None}, token=ana.token).status
        == 200
    )
    assert read(den, path, bo.token).status == 404


def test_every_read_and_write_is_in_the_audit_log_without_values(
    den: DenServer, marker: str
) -> None:
    ana, bo = den.new_user("ana"), den.new_user("bo")
    path = save_secret(den, ana, "gh", {"token": marker})
    assert read(den, path, ana.token).status == 200
    assert read(den, path, bo.token).status == 404
    assert read(den, path, ana.token, 9).status == 404
    assert den.request("DELETE", f"/v1/secret-values/{path}", token=ana.token).status == 200
    mine = list(reversed(events(den, user=ana.name)))
    seen = [
        (e["action"], e["outcome"], e["detail"].get("version"))
        for e in mine
        if e["action"].startswith("secret.")
    ]
    assert seen == [
        ("secret.write", "ok", 1),
        ("secret.read", "ok", 1),
        ("secret.read", "failed", 9),
        ("secret.delete", "ok", None),
    ]
    theirs = [e for e in events(den, user=bo.name) if e["action"] == "secret.read"]
    assert [(e["target"], e["outcome"]) for e in theirs] == [(f"/{path}", "denied")]
    assert all(e["detail"].get("token") for e in mine + theirs)  # which token, by prefix
    assert marker not in json.dumps(events(den))
    assert marker not in den.output


def test_deleting_the_secret_deletes_its_values(den: DenServer, marker: str) -> None:
    ana = den.new_user("ana")
    path = save_secret(den, ana, "gone", {"K": marker})
    assert den.request("DELETE", f"/v1/resources/{path}", token=ana.token).status == 200
    assert rows(den, path) == []
    assert read(den, path, ana.token).status == 404
    save_secret(den, ana, "gone", {"K": "new"})  # the name starts again at version 1
    assert read(den, path, ana.token).body == {"version": 1, "values": {"K": "new"}}


def test_values_over_the_body_limit_are_refused(den: DenServer) -> None:
    ana = den.new_user("ana")
    path = save_secret(den, ana, "big", {"K": "small"})
    huge = {"values": {"K": "x" * (1024 * 1024 + 1)}}
    reply = den.request("PUT", f"/v1/secret-values/{path}?version=1", huge, token=ana.token)
    assert reply.status == 413


# -- never in clear -----------------------------------------------------------------------


def test_den_database_files_and_log_never_hold_a_value_in_clear(
    den: DenServer, marker: str, request: pytest.FixtureRequest
) -> None:
    ana = den.new_user("ana")
    for n in range(3):
        save_secret(den, ana, f"grep{n}", {"K": f"{marker}-{n}", "PEM": f"--{marker}--\n"})
        assert read(den, f"{ana.name}/grep{n}", ana.token).status == 200
    needle = marker.encode()
    if den.db_url.startswith("sqlite"):
        files = [p for p in den.data_dir.iterdir() if p.is_file()]
        assert {p.name for p in files} >= {"den.sqlite", "den.sqlite-wal"}
    else:
        den.sql("CHECKPOINT")  # the pages to the files, not only to the WAL
        root = request.getfixturevalue("postgres_server").root
        files = [p for p in root.rglob("*") if p.is_file()]
        tables = [
            r[0] for r in den.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        assert "secret_values" in tables
        for table in tables:
            text = den.sql(
                f"SELECT coalesce(string_agg(row_to_json(t)::text, ' '), '') FROM \"{table}\" AS t"
            )[0][0]
            assert marker not in text, table
    assert len(files) > 3
    for path in files:
        assert needle not in path.read_bytes(), path
    assert marker not in den.output


# -- faults: a wrong master key, an altered row --------------------------------------------


@pytest.fixture
def own_den(tmp_path: Path, db_url: str | None) -> Iterator[DenServer]:
    """A Den of the test's own, which the test may stop and start again."""
    server = start_den(tmp_path / "den", db_url)
    yield server
    server.stop()


def restart(server: DenServer, *extra: str) -> DenServer:
    """Stop ``server`` and start a Den on the same data folder and database."""
    server.stop()
    db = None if server.db_url.startswith("sqlite") else server.db_url
    again = start_den(server.data_dir, db, extra)
    again.admin_token = server.admin_token
    return again


def test_a_wrong_master_key_is_a_clear_error_and_den_keeps_serving(
    own_den: DenServer, tmp_path: Path, marker: str
) -> None:
    ana = own_den.new_user("ana")
    path = save_secret(own_den, ana, "aws", {"secret_key": marker})
    key_file = own_den.data_dir / "master_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    sealed_by = crypto.read_key_file(key_file).id
    other = tmp_path / "other_key"
    crypto.write_key_file(other, crypto.new_key())
    den = restart(own_den, "--master-key-file", str(other))
    try:
        reply = read(den, path, ana.token)
        assert reply.status == 500 and reply.body["error"] == "cannot_decrypt"
        message = reply.body["message"]
        assert f"secret /{path} version 1 cannot be decrypted" in message
        assert sealed_by in message and "--master-key-file" in message
        assert marker not in reply.raw.decode()
        assert den.request("GET", "/v1/whoami", token=ana.token).status == 200
        assert den.request("GET", f"/v1/resources/{path}", token=ana.token).status == 200
        fresh = save_secret(den, ana, "new", {"K": "v"})  # sealed with the key it has
        assert read(den, fresh, ana.token).body["values"] == {"K": "v"}
        assert "sealed with master keys Den was not given" in den.output
    finally:
        den.stop()
    back = restart(den)
    try:
        assert read(back, path, ana.token).body["values"] == {"secret_key": marker}
        failed = [e for e in events(back, user=ana.name) if e["outcome"] == "failed"]
        assert failed[0]["action"] == "secret.read"
        assert failed[0]["detail"]["error"] == "cannot_decrypt"
        assert marker not in back.output
    finally:
        back.stop()


def test_an_altered_or_swapped_row_is_a_clear_error(den: DenServer, marker: str) -> None:
    ana = den.new_user("ana")
    path = save_secret(den, ana, "tamper", {"K": f"one-{marker}"})
    save_secret(den, ana, "tamper", {"K": f"two-{marker}"})
    _, ciphertext, _, _, _ = rows(den, path)[0]
    flipped = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    resource = "(SELECT id FROM resources WHERE path = :path)"
    den.sql(
        f"UPDATE secret_values SET ciphertext = :c WHERE resource_id = {resource} AND version = 1",
        c=flipped,
        path=path,
    )
    reply = read(den, path, ana.token, 1)
    assert reply.status == 500 and reply.body["error"] == "cannot_decrypt"
    assert "version 1 cannot be decrypted" in reply.body["message"]
    assert "altered" in reply.body["message"]
    # Version 2's row copied whole onto version 1: opens as nothing else either.
    _, c2, n2, w2, k2 = rows(den, path)[1]
    den.sql(
        f"UPDATE secret_values SET ciphertext = :c, nonce = :n, wrapped_key = :w, "
        f"key_id = :k WHERE resource_id = {resource} AND version = 1",
        c=c2,
        n=n2,
        w=w2,
        k=k2,
        path=path,
    )
    swapped = read(den, path, ana.token, 1)
    assert swapped.status == 500 and marker not in swapped.raw.decode()
    assert read(den, path, ana.token, 2).body["values"] == {"K": f"two-{marker}"}
    assert den.request("GET", "/v1/health").status == 200


def test_den_refuses_to_start_without_the_key_that_sealed_its_values(
    own_den: DenServer, marker: str
) -> None:
    ana = own_den.new_user("ana")
    save_secret(own_den, ana, "k", {"K": marker})
    own_den.stop()
    key_file = own_den.data_dir / "master_key"
    kept = key_file.read_bytes()
    key_file.unlink()
    db = None if own_den.db_url.startswith("sqlite") else own_den.db_url
    done = run_den(own_den.data_dir, db)
    assert done.returncode != 0
    assert "master key file" in done.stderr and "is missing" in done.stderr
    assert not key_file.exists()  # no new key made over sealed values
    key_file.write_bytes(kept)
    os.chmod(key_file, 0o644)
    done = run_den(own_den.data_dir, db)
    assert done.returncode != 0 and "chmod 600" in done.stderr


def run_den(data_dir: Path, db: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    """A foreground start expected to fail at once."""
    return subprocess.run(
        den_command(data_dir, db, *extra),
        capture_output=True,
        text=True,
        timeout=60,
        env=den_env(data_dir.parent),
    )


# -- rotation -----------------------------------------------------------------------------


def rotate(server: DenServer) -> subprocess.CompletedProcess[str]:
    """``runhouse den rotate-master-key`` on the server's data folder and database."""
    command = [*ROTATE, "--data-dir", str(server.data_dir)]
    if not server.db_url.startswith("sqlite"):
        command += ["--db", server.db_url]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=den_env(server.data_dir.parent)
    )


def test_rotation_rewraps_data_keys_and_leaves_ciphertexts_alone(
    own_den: DenServer, tmp_path: Path, marker: str
) -> None:
    ana = own_den.new_user("ana")
    paths = [save_secret(own_den, ana, f"s{n}", {"K": f"{marker}-{n}"}) for n in range(3)]
    before = {p: rows(own_den, p) for p in paths}
    key_file = own_den.data_dir / "master_key"
    old_copy = tmp_path / "old_key"
    old_copy.write_bytes(key_file.read_bytes())
    os.chmod(old_copy, 0o600)
    old_id = crypto.read_key_file(key_file).id

    refused = rotate(own_den)  # Den serves the folder: refused, nothing changed
    assert refused.returncode == 1 and "stop it first" in refused.stderr
    assert {p: rows(own_den, p) for p in paths} == before

    own_den.stop()
    done = rotate(own_den)
    assert done.returncode == 0, done.stderr
    assert "Re-wrapped 3 data keys" in done.stdout
    new_id = crypto.read_key_file(key_file).id
    assert new_id != old_id and not crypto.pending_path(key_file).exists()
    for p in paths:
        after = rows(own_den, p)
        assert [(r[0], r[1], r[2]) for r in after] == [(r[0], r[1], r[2]) for r in before[p]]
        assert all(a[3] != b[3] and a[4] == new_id for a, b in zip(after, before[p], strict=True))

    den = restart(own_den)
    try:
        for n, p in enumerate(paths):
            assert read(den, p, ana.token).body["values"] == {"K": f"{marker}-{n}"}
    finally:
        den.stop()
    old = restart(den, "--master-key-file", str(old_copy))
    try:
        reply = read(old, paths[0], ana.token)
        assert reply.status == 500 and reply.body["error"] == "cannot_decrypt"
        assert new_id in reply.body["message"]
    finally:
        old.stop()
    assert marker not in done.stdout + done.stderr


def test_an_interrupted_rotation_serves_both_keys_and_resumes(
    own_den: DenServer, marker: str
) -> None:
    ana = own_den.new_user("ana")
    paths = [save_secret(own_den, ana, f"r{n}", {"K": f"{marker}-{n}"}) for n in range(3)]
    own_den.stop()
    # As a rotation killed after its first row: the new key beside the old, one row moved.
    key_file = own_den.data_dir / "master_key"
    old, new = crypto.read_key_file(key_file), crypto.new_key()
    crypto.write_key_file(crypto.pending_path(key_file), new)
    version, _, _, wrapped, _ = rows(own_den, paths[0])[0]
    moved = crypto.rewrap(old, new, wrapped, paths[0], version)
    own_den.sql(
        "UPDATE secret_values SET wrapped_key = :w, key_id = :k WHERE resource_id = "
        "(SELECT id FROM resources WHERE path = :path)",
        w=moved,
        k=new.id,
        path=paths[0],
    )
    den = restart(own_den)
    try:
        for n, p in enumerate(paths):  # both keys open what they wrapped
            assert read(den, p, ana.token).body["values"] == {"K": f"{marker}-{n}"}
    finally:
        den.stop()
    done = rotate(den)
    assert done.returncode == 0, done.stderr
    assert "Re-wrapped 2 data keys" in done.stdout and "resumed" in done.stdout
    assert crypto.read_key_file(key_file).id == new.id
    assert {r[4] for p in paths for r in rows(den, p)} == {new.id}
    back = restart(den)
    try:
        for n, p in enumerate(paths):
            assert read(back, p, ana.token).body["values"] == {"K": f"{marker}-{n}"}
    finally:
        back.stop()
