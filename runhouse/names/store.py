"""The store interface: where resource configs and their versions live.

A store keeps, per address, an append-only list of numbered versions (1, 2, 3, ...) and a
current config, which is the newest version's. Implementations: ``LocalStore`` (the ``rh/``
folder in the working dir) and ``DenStore`` (the metadata server, over HTTP). A new store
writes the abstract methods below and inherits ``version``.

    >>> store = LocalStore()
    >>> store.append(Address("local", ("team", "x")), {"name": "~/team/x", ...}, author="ana")
    ResourceVersion(version=1, ...)
    >>> store.read(Address("local", ("team", "x")))
    {'name': '~/team/x', ...}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from runhouse.exceptions import VersionNotFoundError
from runhouse.names.address import Address


@dataclass(frozen=True)
class ResourceVersion:
    """One saved version of a resource: its number, when, by whom, and the config."""

    version: int
    timestamp: str
    author: str
    config: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Entry:
    """One row of a folder listing: a resource, a sub-folder, or a config that does not parse."""

    name: str
    address: str
    kind: Literal["resource", "folder", "corrupt"]
    resource_type: str | None = None
    version: int | None = None
    error: str | None = None


class Store(ABC):
    """Where configs and versions of one kind of address live."""

    kind: ClassVar[str]

    @abstractmethod
    def describe(self, address: Address) -> str:
        """Where this store looks for ``address`` (a path or URL), for messages."""

    @abstractmethod
    def read(self, address: Address) -> dict[str, Any]:
        """The current config; ``ResourceNotFoundError`` if nothing is saved there."""

    @abstractmethod
    def exists(self, address: Address) -> bool:
        """Whether a resource is saved at ``address``."""

    @abstractmethod
    def append(
        self,
        address: Address,
        config: dict[str, Any],
        author: str,
        overwrite: bool = True,
        expected_version: int | None = None,
    ) -> ResourceVersion:
        """Save ``config`` as the next version; a taken address needs ``overwrite``. With
        ``expected_version`` (0: nothing saved yet) the save happens only if the current
        version is that one, else ``VersionConflictError``, atomically with the save."""

    @abstractmethod
    def history(self, address: Address, limit: int | None = None) -> list[ResourceVersion]:
        """The saved versions, newest first (at most ``limit``)."""

    @abstractmethod
    def delete(self, address: Address) -> bool:
        """Remove the config and all its versions; whether anything was there."""

    @abstractmethod
    def ls(self, folder: Address) -> list[Entry]:
        """The resources and sub-folders directly inside ``folder``, sorted by name."""

    def version(self, address: Address, number: int) -> ResourceVersion:
        """One saved version by number; ``VersionNotFoundError`` if there is none."""
        versions = self.history(address)
        for saved in versions:
            if saved.version == number:
                return saved
        raise VersionNotFoundError(str(address), number, sorted(v.version for v in versions))
