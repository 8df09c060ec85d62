"""The backend interface: a secret's values by address and version, kept apart from its
config (which goes to a store like every resource's, and never holds values).

    >>> backend = backend_for(address)
    >>> backend.put(address, 3, {"api_key": "..."})    # the values of version 3
    >>> backend.get(address)                            # the newest version's
    >>> backend.delete(address)                         # every version's

A backend writes ``put``, ``get``, ``delete`` and ``describe``. Which one holds an address is
decided by its store's kind: Den keeps the values of secrets whose configs are on Den
(sealed), this machine's ``~/.rh/secrets`` those of local ones. With the setting
``secrets_backend: vault``, a Vault server keeps them all instead (``vault.py``).
Implementations load lazily, so an optional library (hvac) costs nothing until used.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping

from runhouse.config import configs
from runhouse.exceptions import ConfigError, StoreUnavailableError
from runhouse.names.address import Address

# name -> (module:class, the install that brings its library)
BACKENDS: dict[str, tuple[str, str]] = {
    "local": ("runhouse.secrets.backends.local:LocalBackend", "pip install runhouse"),
    "den": ("runhouse.secrets.backends.den:DenBackend", "pip install runhouse"),
    "vault": ("runhouse.secrets.backends.vault:VaultBackend", "pip install hvac"),
}
# What the secrets_backend setting may name: "store" (the address's store decides) or one
# backend for every secret.
CHOICES = ("store", "vault")


class SecretBackend(ABC):
    """Keeps secrets' values, one set per saved version."""

    @abstractmethod
    def put(self, address: Address, version: int, values: Mapping[str, str]) -> None:
        """Keep ``values`` as those of ``version`` of the secret at ``address``."""

    @abstractmethod
    def get(self, address: Address, version: int | None = None) -> dict[str, str]:
        """The values of ``version`` (default: the newest kept); ``SecretValuesMissingError``
        if they are not here."""

    @abstractmethod
    def delete(self, address: Address) -> None:
        """Forget the values of every version (nothing kept is not an error)."""

    @abstractmethod
    def describe(self, address: Address) -> str:
        """Where the values of ``address`` are kept, for messages."""


def backend_name(address: Address) -> str:
    """The name of the backend that keeps the values of the secret at ``address``."""
    chosen = configs.get("secrets_backend") or "store"
    if chosen not in CHOICES:
        raise ConfigError(
            f"the secrets_backend setting is {chosen!r}; use one of {', '.join(CHOICES)} "
            "(`runhouse config set secrets_backend store`)"
        )
    return address.store if chosen == "store" else str(chosen)


def backend_for(address: Address) -> SecretBackend:
    """The backend that keeps the values of the secret at ``address``."""
    name = backend_name(address)
    target, install = BACKENDS[name]
    module_name, _, class_name = target.partition(":")
    try:  # a backend imports its library when made (lazily: only when chosen)
        cls: type[SecretBackend] = getattr(importlib.import_module(module_name), class_name)
        return cls()
    except ImportError as exc:
        raise StoreUnavailableError(
            str(address),
            f"the {name} secrets backend needs {exc.name}, which is not installed: {install}",
        ) from exc
