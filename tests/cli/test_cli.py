"""The runhouse command: in-process for speed, and once as a real process per entry point."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize(
    "entry", [["-m", "runhouse"], ["-c", "from runhouse.cli import main; raise SystemExit(main())"]]
)
def test_entry_points(python: str, entry: list[str]) -> None:
    result = subprocess.run(
        [python, *entry, "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"runhouse {rh.__version__}"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "runhouse"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert rh.__version__ in result.stdout


def test_help_on_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["ls"], ["history"], ["config"], ["config", "set"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
        assert "usage: runhouse" in capsys.readouterr().out
    code, out, _ = run(capsys)
    assert code == 2 and "ls" in out and "history" in out


def test_ls(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ls")
    assert code == 0 and "nothing saved in ~" in err
    env = rh.env(name="np", reqs=[]).save()
    env.save()
    rh.env(name="team/shared", reqs=[]).save()
    code, out, _ = run(capsys, "ls")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "VERSION"]
    assert lines[1].split() == ["np", "env", "2"]
    assert lines[2].split() == ["team/", "folder"]
    _, out, _ = run(capsys, "ls", "team")
    assert out.splitlines()[1].split() == ["shared", "env", "1"]
    rh.set_folder("~/team")
    _, out, _ = run(capsys, "ls")
    assert "shared" in out and "np" not in out


def test_ls_flags_a_corrupt_config_and_lists_the_rest(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    rh.env(name="good", reqs=[]).save()
    rh.env(name="bad", reqs=[]).save()
    (project / "rh" / "bad" / "config.json").write_text("{oops")
    code, out, err = run(capsys, "ls")
    assert code == 0
    assert "good" in out and "CORRUPT" in out
    assert "line 1" in err and "bad/config.json" in err


def test_history(capsys: pytest.CaptureFixture[str]) -> None:
    rh.configs.set("username", "ana")
    env = rh.env(name="np", reqs=["a"]).save()
    env.reqs = ["b"]
    env.save()
    code, out, _ = run(capsys, "history", "np")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["VERSION", "SAVED", "(UTC)", "AUTHOR", "TYPE"]
    assert [r[0] for r in rows[1:]] == ["2", "1"]
    assert all(r[2] == "ana" and r[3] == "env" for r in rows[1:])
    _, out, _ = run(capsys, "history", "np", "--limit", "1", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 1 and records[0]["config"]["reqs"] == ["b"]


def test_errors_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "history", "nope")
    assert code == 1 and out == ""
    assert err.startswith("runhouse: error: No resource saved at '~/nope'")
    code, _, err = run(capsys, "history", "a b")
    assert code == 1 and "whitespace" in err
    code, _, err = run(capsys, "config", "delete", "never_set")
    assert code == 1 and "not set" in err


def test_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "config", "set", "username", "007")[0] == 0
    assert rh.configs.get("username") == "007"  # declared str: stays text
    run(capsys, "config", "set", "retries", "3")
    run(capsys, "config", "set", "verbose", "false")
    assert rh.configs.get("retries") == 3 and rh.configs.get("verbose") is False
    assert run(capsys, "config", "get", "verbose")[1] == "false\n"
    assert run(capsys, "config", "get", "username")[1] == "007\n"
    run(capsys, "config", "set", "token", "s3cret")
    _, out, _ = run(capsys, "config", "list")
    assert "token=****  (file)" in out
    assert "s3cret" not in out
    assert "default_folder=~  (default)" in out
    assert run(capsys, "config", "delete", "retries")[0] == 0
    assert rh.configs.get("retries") is None
