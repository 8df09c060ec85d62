"""The Vault backend, as far as it runs without a Vault server (none can run here: see the
backend's notes, it is not exercised in CI): choosing it, the install hint when hvac is
missing, and how addresses and versions map to Vault paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import runhouse as rh
from runhouse.exceptions import ConfigError, InvalidNameError
from runhouse.names.address import Address, check_part
from runhouse.secrets.backends import vault
from runhouse.secrets.backends.base import backend_for, backend_name


def test_the_setting_chooses_vault_for_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    den, local = Address("den", ("ana", "aws")), Address("local", ("aws",))
    assert (backend_name(den), backend_name(local)) == ("den", "local")
    monkeypatch.setenv("RH_SECRETS_BACKEND", "vault")
    assert (backend_name(den), backend_name(local)) == ("vault", "vault")
    monkeypatch.setenv("RH_SECRETS_BACKEND", "keychain")
    with pytest.raises(ConfigError, match="use one of store, vault"):
        backend_name(den)


def test_without_hvac_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RH_SECRETS_BACKEND", "vault")
    monkeypatch.setitem(sys.modules, "hvac", None)  # as if not installed: import fails
    with pytest.raises(rh.StoreUnavailableError) as caught:
        backend_for(Address("local", ("openai",)))
    message = str(caught.value)
    assert "pip install hvac" in message and "~/openai" in message
    with pytest.raises(ImportError, match="pip install hvac"):
        vault.import_hvac()


def test_addresses_map_to_one_vault_key_per_version(tmp_path: Path) -> None:
    ana = Address("den", ("ana", "team", "aws"))
    one = vault.scope(ana, "https://den.example:8900/", None)
    assert one == vault.scope(ana, "https://den.example:8900", None)  # the trailing "/"
    assert one.startswith("den-") and one != vault.scope(ana, "https://other:8900", None)
    mine = vault.scope(Address("local", ("aws",)), None, tmp_path / "a")
    assert mine.startswith("local-") and mine != vault.scope(
        Address("local", ("aws",)), None, tmp_path / "b"
    )
    folder = vault.folder_path(ana, "/runhouse/prod/", one)
    assert folder == f"runhouse/prod/{one}/ana/team/aws"
    assert vault.folder_path(ana, "", one) == f"{one}/ana/team/aws"
    assert vault.version_key(3) == "-v00000003"
    with pytest.raises(InvalidNameError):  # no secret nested beneath can share the key
        check_part(vault.version_key(3), "/ana/team/aws")
    listed = ["-v00000010", "-v00000002", "nested/", "-vbad", "-v00000001"]
    assert vault.listed_versions(listed) == [1, 2, 10]
