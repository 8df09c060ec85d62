"""rh.configs: the file, RH_* overrides, declared types, falsy values, bad input."""

from __future__ import annotations

import stat
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

import runhouse as rh
from runhouse import config as config_module
from runhouse.config import SETTINGS, Setting
from tests.processes import run_together


@pytest.fixture
def typed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Declare a bool and an int setting, as later features do (autostart, ports)."""
    monkeypatch.setitem(SETTINGS, "flag", Setting("flag", bool, True, "a bool"))
    monkeypatch.setitem(SETTINGS, "port", Setting("port", int, 32300, "an int"))


def config_path() -> Path:
    return Path.home() / ".rh" / "config.yaml"


def test_defaults_when_nothing_is_stored() -> None:
    assert rh.configs.get("default_folder") == "~"
    assert rh.configs.get("den_url") is None
    assert rh.configs.get("undeclared") is None
    assert rh.configs.get("undeclared", 5) == 5
    assert not config_path().exists()


def test_set_get_delete_and_the_file() -> None:
    rh.configs.set("username", "ana")
    rh.configs.set("defaults", {"autostop_mins": 30, "provider": "aws"})
    assert rh.configs.get("username") == "ana"
    assert rh.configs.get("defaults") == {"autostop_mins": 30, "provider": "aws"}
    path = config_path()
    assert yaml.safe_load(path.read_text())["username"] == "ana"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rh.configs.delete("username")
    assert rh.configs.get("username") is None
    with pytest.raises(KeyError, match="not set"):
        rh.configs.delete("username")


@pytest.mark.parametrize("value", [0, False, "", 0.0, [], {}])
def test_falsy_values_are_returned_as_stored(value: object) -> None:
    rh.configs.set("thing", value)
    assert rh.configs.get("thing", "fallback") == value
    assert type(rh.configs.get("thing", "fallback")) is type(value)


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    rh.configs.set("username", "ana")
    monkeypatch.setenv("RH_USERNAME", "bo")
    assert rh.configs.get("username") == "bo"
    assert rh.configs.lookup("username") == ("bo", "env")
    monkeypatch.setenv("RH_USERNAME", "")
    assert rh.configs.get("username") == ""  # an empty variable is a value too
    monkeypatch.setenv("RH_SOMETHING_ELSE", "x")
    effective = rh.configs.effective()
    assert effective["something_else"] == ("x", "env")
    assert effective["default_folder"] == ("~", "default")


def test_declared_types_parse_variables(
    typed_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rh.configs.get("flag") is True and rh.configs.get("port") == 32300
    for text, expected in (("0", False), ("false", False), ("no", False), ("ON", True)):
        monkeypatch.setenv("RH_FLAG", text)
        assert rh.configs.get("flag") is expected
    monkeypatch.setenv("RH_PORT", "8080")
    assert rh.configs.get("port") == 8080
    monkeypatch.setenv("RH_FLAG", "maybe")
    with pytest.raises(rh.ConfigError, match="RH_FLAG='maybe' is not a boolean"):
        rh.configs.get("flag")
    monkeypatch.setenv("RH_PORT", "eighty")
    with pytest.raises(rh.ConfigError, match="RH_PORT='eighty' is not a valid int"):
        rh.configs.get("port")


def test_declared_types_are_checked_on_set(typed_settings: None) -> None:
    with pytest.raises(rh.ConfigError, match="takes a int, got str"):
        rh.configs.set("port", "80")
    with pytest.raises(rh.ConfigError, match="takes a int, got bool"):
        rh.configs.set("port", True)
    with pytest.raises(rh.ConfigError, match="takes a str"):
        rh.configs.set("username", 3)
    rh.configs.set("flag", False)
    assert rh.configs.get("flag") is False


@pytest.mark.parametrize("key", ["", "Upper", "with-dash", "1st", "a.b", 3])
def test_invalid_keys(key: object) -> None:
    with pytest.raises(rh.ConfigError, match="Invalid settings key"):
        rh.configs.get(key)  # type: ignore[arg-type]


def test_non_yaml_value_is_refused() -> None:
    with pytest.raises(rh.ConfigError, match="not a YAML value"):
        rh.configs.set("thing", object())
    assert not config_path().exists()


def test_corrupt_file_names_file_and_line() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("username: ana\ndefaults: [1, 2\nother: 3\n")
    with pytest.raises(rh.CorruptConfigError) as info:
        rh.configs.get("username")
    assert str(path) in str(info.value)
    assert info.value.line is not None and info.value.line >= 2
    path.write_text("- a list\n")
    with pytest.raises(rh.ConfigError, match="must hold a mapping"):
        rh.configs.get("username")


def test_changes_by_another_process_are_seen(python: str) -> None:
    rh.configs.set("username", "ana")
    assert rh.configs.get("username") == "ana"
    code = "import runhouse as rh; rh.configs.set('username', 'someone-else')"
    subprocess.run([python, "-c", code], check=True)
    assert rh.configs.get("username") == "someone-else"


def test_concurrent_sets_lose_nothing(python: str) -> None:
    code = textwrap.dedent(
        """
        import sys
        import runhouse as rh
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(25):
            rh.configs.set(f"{sys.argv[1]}_{i}", i)
        """
    )
    run_together([[python, "-c", code, who] for who in ("a", "b")], timeout=60)
    stored = rh.configs.stored()
    assert {k: stored[k] for k in stored} == {f"{w}_{i}": i for w in "ab" for i in range(25)}


def test_the_module_level_instance_follows_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rh.configs.set("username", "ana")
    other = tmp_path / "other_home"
    other.mkdir()
    monkeypatch.setenv("HOME", str(other))
    assert config_module.configs.get("username") is None
