"""The backend interface: a secret's values by address and version, kept apart from its
config (which goes to a store like every resource's, and never holds values).

    >>> backend = backend_for(address)
    >>> backend.put(address, 3, {"api_key": "..."})    # the values of version 3
    >>> backend.get(address)                            # the newest version's
    >>> backend.delete(address)                         # every version's

A backend writes ``put``, ``get``, ``delete`` and ``describe``. Which one holds an address is
decided by its store's kind below: while the Den backend is not built, values of secrets
whose configs are on Den stay on this machine too.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping

from runhouse.names.address import Address

BACKENDS: dict[str, str] = {
    "local": "runhouse.secrets.backends.local:LocalBackend",
    "den": "runhouse.secrets.backends.local:LocalBackend",
}


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


def backend_for(address: Address) -> SecretBackend:
    """The backend that keeps the values of the secret at ``address``."""
    module, name = BACKENDS[address.store].split(":")
    cls: type[SecretBackend] = getattr(importlib.import_module(module), name)
    return cls()
