"""``runhouse den user ...`` and ``runhouse den token ...`` against a real Den (SQLite and
PostgreSQL), run in-process; and the sides: Den's server imports no client or daemon code
(but the certificate helper), and the client never imports Den."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runhouse.cli import main
from tests.den_servers import DenServer, unique


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_user_and_token_commands(den: DenServer, capsys: pytest.CaptureFixture[str]) -> None:
    admin = ("--den-url", den.url, "--token", den.admin_token)
    name = unique()
    code, out, _ = run(capsys, "den", "user", "add", name, *admin)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("rhd_")
    code, out, _ = run(capsys, "den", "user", "list", *admin)
    assert code == 0 and name in out and "USERNAME" in out
    mine = ("--den-url", den.url, "--token", token)
    code, out, _ = run(
        capsys, "den", "token", "create", "--name", "ci", "--expires-in-days", "3", *mine
    )
    assert code == 0
    assert "expires" in out
    second = out.strip().splitlines()[-1]
    prefix = second.split("_")[1]
    code, out, _ = run(capsys, "den", "token", "list", *mine)
    assert code == 0
    assert prefix in out and "ci" in out and second not in out
    code, out, _ = run(capsys, "den", "token", "revoke", prefix, *mine)
    assert (code, out) == (0, f"Revoked token {prefix}.\n")
    code, _, err = run(capsys, "den", "token", "list", "--den-url", den.url, "--token", second)
    assert code == 1
    assert "revoked" in err and "runhouse login" in err
    code, _, err = run(capsys, "den", "user", "list", *mine)
    assert code == 1 and "Den admin" in err
    code, out, _ = run(capsys, "den", "user", "remove", name, *admin)
    assert (code, out) == (0, f"Removed {name}.\n")


def test_the_url_and_token_come_from_the_settings(
    den: DenServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RH_DEN_URL", den.url)
    monkeypatch.setenv("RH_TOKEN", den.admin_token)
    code, out, _ = run(capsys, "den", "user", "list")
    assert code == 0 and "admin" in out
    monkeypatch.setenv("RH_DEN_URL", "http://127.0.0.1:9")
    code, _, err = run(capsys, "den", "user", "list")
    assert code == 1
    assert "cannot reach Den" in err


def modules_after(*imports: str) -> set[str]:
    code = "; ".join(f"import {m}" for m in imports)
    code += "; import sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def test_den_imports_no_client_or_daemon_code() -> None:
    loaded = modules_after("runhouse.den.server", "runhouse.den.app", "runhouse.den.process")
    leaked = sorted(
        m
        for m in loaded
        if m.startswith(
            ("runhouse.client", "runhouse.resources", "runhouse.cli", "runhouse.daemon")
        )
    )
    assert leaked == []


def test_the_client_never_imports_den() -> None:
    loaded = modules_after("runhouse", "runhouse.names.resolver", "runhouse.cli")
    assert sorted(m for m in loaded if m.startswith("runhouse.den")) == []
    assert not {"fastapi", "sqlalchemy", "alembic"} & loaded
