"""One resolver from an address to the store that holds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runhouse.config import configs
from runhouse.exceptions import StoreUnavailableError
from runhouse.names.address import Address
from runhouse.names.folders import resource_address
from runhouse.names.local import LocalStore
from runhouse.names.store import Store

_factories: dict[str, Callable[[], Store]] = {"local": LocalStore}
_stores: dict[str, Store] = {}


@dataclass(frozen=True)
class Location:
    """Where a name lives: its absolute address, the kind of store, and the place it looks."""

    address: str
    store: str
    where: str
    exists: bool

    def __str__(self) -> str:
        return self.address


def register_store(kind: str, factory: Callable[[], Store]) -> None:
    """Make addresses of ``kind`` ("local", "den") resolve to stores built by ``factory``."""
    _factories[kind] = factory
    _stores.pop(kind, None)


def store_for(address: Address) -> Store:
    """The store that holds ``address``."""
    store = _stores.get(address.store)
    if store is None:
        factory = _factories.get(address.store)
        if factory is None:
            raise StoreUnavailableError(str(address), _missing_store_reason(address))
        store = _stores[address.store] = factory()
    return store


def _missing_store_reason(address: Address) -> str:
    configured = configs.get("den_url")
    setup = (
        f"den_url is set to {configured!r}, but this runhouse has no metadata-server client"
        if configured
        else "no metadata server is configured (den_url is unset)"
    )
    return (
        f"addresses starting with '/' live on the metadata server (Den), and {setup}. "
        f"Save it in the local store instead, e.g. '~/{address.name}'."
    )


def locate(name: str) -> Location:
    """Where ``name`` lives (resolved against the current folder), and whether it is saved."""
    address = resource_address(name)
    store = store_for(address)
    return Location(str(address), store.kind, store.describe(address), store.exists(address))


def exists(name: str) -> bool:
    """Whether a resource is saved under ``name``."""
    address = resource_address(name)
    return store_for(address).exists(address)
