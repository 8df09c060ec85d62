"""Secrets as resources: configs without values, values under the config's version number,
history and rollback carrying values along, and "another machine" (a second HOME with the
same project) told plainly that the values are not there."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.secrets.backends.local import LocalBackend


def aws_values(marker: str) -> dict[str, str]:
    return {"access_key": f"AKIA{marker}", "secret_key": f"s-{marker}"}


def test_config_repr_and_str_never_hold_values(marker: str) -> None:
    s = rh.provider_secret("aws", values=aws_values(marker))
    k = rh.secret(name="openai_key", values={"OPENAI_API_KEY": marker})
    for secret in (s, k):
        assert marker not in json.dumps(secret.config())
        assert marker not in repr(secret) and marker not in str(secret)
    assert s.config() == {
        "name": "~/aws",
        "resource_type": "secret",
        "resource_subtype": "ProviderSecret",
        "provider": "aws",
        "path": None,
        "env_vars": {},
    }
    assert repr(s) == "ProviderSecret(name='~/aws', provider='aws')"
    assert k.values == {"OPENAI_API_KEY": marker}  # the one place they show


def test_save_keeps_values_apart_and_load_brings_them_back(marker: str, project: Path) -> None:
    rh.provider_secret("aws", values=aws_values(marker)).save()
    saved_files = [p for p in (project / "rh").rglob("*") if p.is_file()]
    assert saved_files and all(marker not in p.read_text() for p in saved_files)

    loaded = rh.load("aws")
    assert isinstance(loaded, rh.ProviderSecret)
    assert loaded.values == aws_values(marker)
    assert rh.secret(name="aws").values == aws_values(marker)
    assert rh.provider_secret(name="aws").provider == "aws"

    root = Path.home() / ".rh" / "secrets"
    kept = [p for p in root.rglob("*") if p.is_file()]
    assert len(kept) == 1 and kept[0].name == "00000001.json"
    for path in (root, *[p for p in root.rglob("*")]):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_versions_and_rollback_carry_the_values(marker: str) -> None:
    k = rh.secret(name="token", values={"TOKEN": f"one-{marker}"}).save()
    k.values = {"TOKEN": f"two-{marker}"}
    k.save()
    assert [v.version for v in k.history()] == [2, 1]
    assert all(marker not in json.dumps(v.config) for v in k.history())
    assert rh.secret(name="token").values == {"TOKEN": f"two-{marker}"}

    k.rollback(1)
    assert k.values == {"TOKEN": f"one-{marker}"}
    assert [v.version for v in k.history()] == [3, 2, 1]
    assert rh.secret(name="token").values == {"TOKEN": f"one-{marker}"}
    address = rh.secret(name="token")._address
    assert address is not None
    assert LocalBackend().get(address, 2) == {"TOKEN": f"two-{marker}"}

    with pytest.raises(rh.VersionNotFoundError):
        k.rollback(9)
    with pytest.raises(rh.VersionConflictError):
        k.save(expected_version=1)


def test_saving_a_loaded_secret_under_another_name_keeps_its_values(marker: str) -> None:
    rh.secret(name="first", values={"K": marker}).save()
    rh.secret(name="first").save(name="second")
    assert rh.secret(name="second").values == {"K": marker}


def test_delete_configs_removes_the_values_too(marker: str) -> None:
    k = rh.secret(name="gone", values={"K": marker}).save()
    k.save()
    k.delete_configs()
    assert not rh.exists("gone")
    root = Path.home() / ".rh" / "secrets"
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_another_machine_has_the_config_but_not_the_values(
    marker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local backend keeps values in ~/.rh/secrets of the machine (and user) that saved
    them; the config is in the project's rh/ folder, which travels (git). A second HOME with
    the same project is that other machine."""
    rh.provider_secret("aws", values=aws_values(marker)).save()
    first_home = Path.home()
    second_home = tmp_path / "second-home"
    second_home.mkdir()
    monkeypatch.setenv("HOME", str(second_home))

    there = rh.load("aws")  # the config loads: it is in the project
    assert isinstance(there, rh.ProviderSecret) and there.provider == "aws"
    with pytest.raises(rh.SecretValuesMissingError) as caught:
        _ = there.values
    message = str(caught.value)
    assert "not on this machine" in message and "~/aws" in message
    assert str(second_home) in message and marker not in message
    assert caught.value.version == 1

    monkeypatch.setenv("HOME", str(first_home))
    assert rh.load("aws").values == aws_values(marker)


def test_two_projects_keep_their_own_secret_of_the_same_name(
    marker: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rh.secret(name="shared", values={"K": f"a-{marker}"}).save()
    other = tmp_path / "other-project"
    (other / ".git").mkdir(parents=True)
    monkeypatch.chdir(other)
    rh.secret(name="shared", values={"K": f"b-{marker}"}).save()
    assert rh.secret(name="shared").values == {"K": f"b-{marker}"}
    monkeypatch.chdir(project)
    assert rh.secret(name="shared").values == {"K": f"a-{marker}"}


def test_bad_values_are_refused_without_showing_them(marker: str) -> None:
    with pytest.raises(TypeError) as caught:
        rh.secret(values={"K": 42, "OK": marker})  # type: ignore[dict-item]
    assert "'K' is a int" in str(caught.value) and marker not in str(caught.value)
    with pytest.raises(ValueError, match="give values="):
        rh.secret()


def test_a_reserved_provider_name_gets_a_name_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "id")
    s = rh.provider_secret("azure")
    assert s.name == "azure_secret"
    s.save()
    assert rh.secret(name="azure_secret").values == {"client_id": "id"}


def test_an_unreadable_file_is_named_and_never_quoted(marker: str) -> None:
    creds = Path.home() / ".aws" / "credentials"
    creds.parent.mkdir()
    creds.write_text(f"aws_access_key_id = {marker}\n")  # no [section]: configparser quotes it
    with pytest.raises(rh.CredentialsNotFoundError) as caught:
        rh.provider_secret("aws")
    assert "~/.aws/credentials (it does not parse as INI)" in str(caught.value)
    assert marker not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
