"""``runhouse secrets``: list, get (keys; values with --show only), set, delete, import; and
``runhouse ls`` / ``history`` never print a value."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_aws(marker: str) -> None:
    creds = Path.home() / ".aws" / "credentials"
    creds.parent.mkdir()
    creds.write_text(
        f"[default]\naws_access_key_id = A{marker}\naws_secret_access_key = S{marker}\n"
    )


def test_import_list_get_show_delete(marker: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_aws(marker)
    code, out, _ = run(capsys, "secrets", "import", "aws")
    assert code == 0 and "Saved ~/aws (version 1) from ~/.aws/credentials" in out
    rh.secret(name="notes", values={"NOTE": marker}).save()

    code, out, _ = run(capsys, "secrets", "list")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows == [
        ["NAME", "PROVIDER", "VERSION"],
        ["aws", "aws", "1"],
        ["notes", "(custom)", "1"],
    ]

    code, out, _ = run(capsys, "secrets", "get", "aws")
    assert code == 0 and out.splitlines()[1:] == ["access_key", "secret_key"]
    assert marker not in out

    code, out, _ = run(capsys, "secrets", "get", "aws", "--show")
    assert code == 0 and out.splitlines()[1:] == [f"access_key=A{marker}", f"secret_key=S{marker}"]

    for command in (["ls"], ["history", "aws"], ["history", "aws", "--json"], ["secrets", "list"]):
        code, out, err = run(capsys, *command)
        assert code == 0 and marker not in out + err, command

    code, out, _ = run(capsys, "secrets", "delete", "aws")
    assert code == 0 and "Deleted ~/aws" in out
    assert not rh.exists("aws")
    code, _, err = run(capsys, "secrets", "delete", "aws")
    assert code == 1 and "No secret saved at ~/aws" in err


def test_set_makes_and_updates_a_secret(
    marker: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, "secrets", "set", "svc", "USER=ana", f"PASSWORD=p{marker}")
    assert code == 0 and "Saved ~/svc (version 1): set PASSWORD, USER." in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"t{marker}\n"))  # a bare KEY reads stdin
    code, out, _ = run(capsys, "secrets", "set", "svc", "TOKEN")
    assert code == 0 and "(version 2): set TOKEN." in out and marker not in out
    assert rh.secret(name="svc").values == {
        "USER": "ana",
        "PASSWORD": f"p{marker}",
        "TOKEN": f"t{marker}",
    }


def test_errors_are_one_line_and_hold_no_value(
    marker: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "secrets", "import", "awz")
    assert code == 1 and "Known providers: anthropic, aws" in err
    code, _, err = run(capsys, "secrets", "import", "openai")
    assert code == 1 and "OPENAI_API_KEY" in err

    rh.secret(name="far", values={"K": marker}).save()
    monkeypatch.setenv("HOME", str(tmp_path))  # another machine: the values are not here
    code, out, err = run(capsys, "secrets", "get", "far", "--show")
    assert code == 1 and out == "" and "not on this machine" in err and marker not in err


def test_secrets_help(python: str) -> None:
    result = subprocess.run(
        [python, "-m", "runhouse", "secrets", "--help"], capture_output=True, text=True, check=True
    )
    for verb in ("list", "get", "set", "delete", "import"):
        assert verb in result.stdout
