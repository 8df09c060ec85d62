"""One resolver from an address to the store that holds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runhouse.exceptions import StoreUnavailableError
from runhouse.names.address import Address
from runhouse.names.den import DenStore
from runhouse.names.folders import resource_address
from runhouse.names.local import LocalStore
from runhouse.names.store import Store

_factories: dict[str, Callable[[], Store]] = {"local": LocalStore, "den": DenStore}
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
            raise StoreUnavailableError(
                str(address), f"no store is registered for {address.store!r} addresses"
            )
        store = _stores[address.store] = factory()
    return store


def locate(name: str) -> Location:
    """Where ``name`` lives (resolved against the current folder), and whether it is saved."""
    address = resource_address(name)
    store = store_for(address)
    return Location(str(address), store.kind, store.describe(address), store.exists(address))


def exists(name: str) -> bool:
    """Whether a resource is saved under ``name``."""
    address = resource_address(name)
    return store_for(address).exists(address)
