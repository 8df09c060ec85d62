"""Values in HashiCorp Vault (or OpenBao), KV version 2, through ``hvac``: for teams that
keep credentials in Vault. Chosen for every secret with the setting ``secrets_backend:
vault``; needs ``pip install hvac``.

NOT EXERCISED IN CI: no Vault server can run where the tests run, so only what needs no
server (the install hint, the mapping of addresses to Vault paths) is tested. Try it against
your Vault before relying on it.

    /ana/aws version 3  ->  <mount>/data/<prefix>/den-<hash of den_url>/ana/aws/-v00000003
    ~/team/x version 1  ->  <mount>/data/<prefix>/local-<hash of project>/team/x/-v00000001

One KV key per version (its own KV history is not used: runhouse numbers versions itself);
``-v`` cannot begin an address segment, so version keys never collide with a secret nested
beneath. Where (read at each use): ``vault_url`` setting or ``VAULT_ADDR``; the token from
``VAULT_TOKEN`` or ``~/.vault-token``; ``VAULT_NAMESPACE``, ``VAULT_CACERT``; the KV mount
``vault_mount`` (default ``secret``); the path prefix ``vault_prefix`` (default
``runhouse``). Vault's policies decide who reads what; values never appear in a message.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from runhouse.config import configs
from runhouse.exceptions import (
    PermissionDeniedError,
    SecretValuesMissingError,
    StoreUnavailableError,
)
from runhouse.names.address import Address
from runhouse.names.local import LocalStore
from runhouse.names.resolver import store_for
from runhouse.secrets.backends.base import SecretBackend

INSTALL = "pip install hvac"
DEFAULT_MOUNT = "secret"
DEFAULT_PREFIX = "runhouse"
_VERSION_KEY = re.compile(r"^-v(\d{8})$")


def import_hvac() -> Any:
    """The ``hvac`` module, or an ImportError that says how to install it."""
    try:
        return importlib.import_module("hvac")
    except ImportError as exc:
        raise ImportError(
            f"the Vault secrets backend needs hvac, which is not installed: {INSTALL}",
            name="hvac",
        ) from exc


def scope(address: Address, den_url: str | None, project_root: Path | None) -> str:
    """Which store's secret this is (a Den server, or a project's ``rh/`` folder), as one
    path segment: two Dens' (or projects') ``/ana/aws`` are two secrets."""
    where = (den_url or "").rstrip("/") if address.store == "den" else str(project_root or "")
    return f"{address.store}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def folder_path(address: Address, prefix: str, where: str) -> str:
    """The Vault folder (below the mount) holding every version of ``address``."""
    return "/".join([p for p in prefix.strip("/").split("/") if p] + [where, *address.parts])


def version_key(version: int) -> str:
    """The key of one version inside its folder."""
    return f"-v{version:08d}"


def listed_versions(keys: list[str]) -> list[int]:
    """The version numbers among the keys a folder lists (sub-folders end with "/")."""
    return sorted(int(m.group(1)) for key in keys if (m := _VERSION_KEY.match(key)))


class VaultBackend(SecretBackend):
    """Values as KV v2 secrets in Vault (see the module notes; not exercised in CI)."""

    def __init__(self) -> None:
        self._hvac = import_hvac()  # here, so backend_for can give the install hint

    def describe(self, address: Address) -> str:
        """The Vault URL and path of ``address``'s versions."""
        return f"Vault at {_url() or '(VAULT_ADDR is unset)'}, {_mount()}/{self._folder(address)}"

    def put(self, address: Address, version: int, values: Mapping[str, str]) -> None:
        """Write version ``version``'s values as one KV secret."""
        path = f"{self._folder(address)}/{version_key(version)}"
        try:
            self._kv(address).create_or_update_secret(
                path=path, secret=dict(values), mount_point=_mount()
            )
        except Exception as exc:
            self._raise(address, exc)

    def get(self, address: Address, version: int | None = None) -> dict[str, str]:
        """The values of ``version`` (default: the newest kept in Vault)."""
        kv = self._kv(address)
        if version is None:
            versions = self._versions(address)
            if not versions:
                self._missing(address, None)
            version = versions[-1]
        path = f"{self._folder(address)}/{version_key(version)}"
        try:
            answer = kv.read_secret_version(
                path=path, mount_point=_mount(), raise_on_deleted_version=True
            )
        except Exception as exc:
            if isinstance(exc, self._hvac.exceptions.InvalidPath):
                self._missing(address, version)
            self._raise(address, exc)
        data = answer.get("data", {}).get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            self._missing(address, version)
        return {str(k): str(v) for k, v in data.items()}

    def delete(self, address: Address) -> None:
        """Delete every version's KV secret, with its metadata and history."""
        kv = self._kv(address)
        for version in self._versions(address):
            path = f"{self._folder(address)}/{version_key(version)}"
            try:
                kv.delete_metadata_and_all_versions(path=path, mount_point=_mount())
            except Exception as exc:
                if not isinstance(exc, self._hvac.exceptions.InvalidPath):
                    self._raise(address, exc)

    def _versions(self, address: Address) -> list[int]:
        try:
            answer = self._kv(address).list_secrets(
                path=self._folder(address), mount_point=_mount()
            )
        except Exception as exc:
            if isinstance(exc, self._hvac.exceptions.InvalidPath):
                return []  # Vault answers 404 for a folder with nothing in it
            self._raise(address, exc)
        keys = answer.get("data", {}).get("keys", []) if isinstance(answer, dict) else []
        return listed_versions([str(k) for k in keys])

    def _folder(self, address: Address) -> str:
        store = store_for(address)
        root = store.root.resolve() if isinstance(store, LocalStore) else None
        where = scope(address, configs.get("den_url"), root)
        return folder_path(address, str(configs.get("vault_prefix") or DEFAULT_PREFIX), where)

    def _kv(self, address: Address) -> Any:
        url = _url()
        if not url:
            raise StoreUnavailableError(
                str(address),
                "the Vault secrets backend needs Vault's URL: set VAULT_ADDR or "
                "`runhouse config set vault_url https://vault:8200`",
            )
        token = os.environ.get("VAULT_TOKEN") or _token_file()
        if not token:
            raise StoreUnavailableError(
                str(address),
                f"no Vault token: set VAULT_TOKEN, or log in with `vault login` (which "
                f"writes ~/.vault-token) to reach {url}",
            )
        client = self._hvac.Client(
            url=url,
            token=token,
            namespace=os.environ.get("VAULT_NAMESPACE") or None,
            verify=os.environ.get("VAULT_CACERT") or True,
        )
        return client.secrets.kv.v2

    def _missing(self, address: Address, version: int | None) -> NoReturn:
        raise SecretValuesMissingError(
            str(address),
            version,
            self.describe(address),
            "Save the secret again with the Vault backend set (its values go with each "
            "save), or ask whoever runs Vault for read access to that path.",
        )

    def _raise(self, address: Address, exc: Exception) -> NoReturn:
        """Translate hvac's (and requests') errors; their messages are Vault's, and Vault
        never echoes the values it was sent."""
        errors = self._hvac.exceptions
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, (errors.Forbidden, errors.Unauthorized)):
            raise PermissionDeniedError(
                str(address),
                f"Vault at {_url()} refused the token ({reason}): check VAULT_TOKEN and the "
                f"policy on {_mount()}/{self._folder(address)}",
            ) from exc
        if isinstance(exc, (errors.VaultError, OSError)):
            raise StoreUnavailableError(
                str(address), f"Vault at {_url()} failed: {type(exc).__name__}: {reason}"
            ) from exc
        # requests' connection errors are OSErrors; anything else is not Vault's answer
        raise exc


def _url() -> str:
    return str(configs.get("vault_url") or os.environ.get("VAULT_ADDR") or "").rstrip("/")


def _mount() -> str:
    return str(configs.get("vault_mount") or DEFAULT_MOUNT).strip("/")


def _token_file() -> str | None:
    try:
        return (Path.home() / ".vault-token").read_text().strip() or None
    except OSError:
        return None
