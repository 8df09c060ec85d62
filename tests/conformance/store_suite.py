"""What every Store must do. Mix ``StoreConformance`` into a test class that provides the
``store`` fixture and an ``addr`` fixture (a function from path segments to an Address)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runhouse.exceptions import (
    ResourceExistsError,
    ResourceNotFoundError,
    VersionConflictError,
    VersionNotFoundError,
)
from runhouse.names.address import Address
from runhouse.names.store import Store

MakeAddress = Callable[..., Address]


def config_for(address: Address, **fields: Any) -> dict[str, Any]:
    """A minimal valid config saved at ``address``."""
    return {"name": str(address), "resource_type": "resource", **fields}


class StoreConformance:
    """The store contract: numbered versions, newest-first history, listing, deletion."""

    def test_append_then_read(self, store: Store, addr: MakeAddress) -> None:
        a = addr("x")
        saved = store.append(a, config_for(a, n=1), author="ana")
        assert saved.version == 1
        assert saved.author == "ana"
        assert saved.timestamp
        assert store.read(a) == config_for(a, n=1)
        assert store.exists(a)

    def test_versions_are_contiguous_and_history_is_newest_first(
        self, store: Store, addr: MakeAddress
    ) -> None:
        a = addr("x")
        for n in range(1, 6):
            assert store.append(a, config_for(a, n=n), author="ana").version == n
        history = store.history(a)
        assert [v.version for v in history] == [5, 4, 3, 2, 1]
        assert [v.config["n"] for v in history] == [5, 4, 3, 2, 1]
        assert [v.version for v in store.history(a, limit=2)] == [5, 4]
        assert store.read(a)["n"] == 5

    def test_version_lookup(self, store: Store, addr: MakeAddress) -> None:
        a = addr("x")
        store.append(a, config_for(a, n=1), author="ana")
        store.append(a, config_for(a, n=2), author="bo")
        assert store.version(a, 1).config["n"] == 1
        assert store.version(a, 2).author == "bo"
        with pytest.raises(VersionNotFoundError) as info:
            store.version(a, 7)
        assert isinstance(info.value, KeyError)
        assert "1..2" in str(info.value)

    def test_overwrite_false_refuses_a_taken_address(self, store: Store, addr: MakeAddress) -> None:
        a = addr("x")
        store.append(a, config_for(a, n=1), author="ana", overwrite=False)
        with pytest.raises(ResourceExistsError) as info:
            store.append(a, config_for(a, n=2), author="ana", overwrite=False)
        assert str(a) in str(info.value)
        assert [v.version for v in store.history(a)] == [1]
        assert store.read(a)["n"] == 1

    def test_missing_address(self, store: Store, addr: MakeAddress) -> None:
        a = addr("nothing", "here_either")
        assert not store.exists(a)
        with pytest.raises(ResourceNotFoundError) as info:
            store.read(a)
        assert isinstance(info.value, KeyError)
        assert str(a) in str(info.value)
        assert info.value.looked_in
        with pytest.raises(KeyError):
            store.history(a)

    def test_delete(self, store: Store, addr: MakeAddress) -> None:
        a = addr("x")
        store.append(a, config_for(a), author="ana")
        assert store.delete(a) is True
        assert not store.exists(a)
        assert store.delete(a) is False
        with pytest.raises(ResourceNotFoundError):
            store.history(a)
        assert store.append(a, config_for(a), author="ana").version == 1

    def test_delete_keeps_resources_nested_below(self, store: Store, addr: MakeAddress) -> None:
        parent, child = addr("team"), addr("team", "x")
        store.append(parent, config_for(parent), author="ana")
        store.append(child, config_for(child), author="ana")
        store.delete(parent)
        assert not store.exists(parent)
        assert store.read(child) == config_for(child)

    def test_list(self, store: Store, addr: MakeAddress) -> None:
        for parts in (("a",), ("b",), ("team", "c"), ("b", "d")):
            address = addr(*parts)
            store.append(address, config_for(address), author="ana")
        store.append(addr("a"), config_for(addr("a")), author="ana")
        rows = {(e.name, e.kind, e.version) for e in store.ls(addr())}
        assert rows == {
            ("a", "resource", 2),
            ("b", "resource", 1),
            ("b/", "folder", None),
            ("team/", "folder", None),
        }
        assert [e.name for e in store.ls(addr("team"))] == ["c"]
        assert store.ls(addr("missing")) == []

    def test_non_json_config_writes_nothing(self, store: Store, addr: MakeAddress) -> None:
        a = addr("x")
        with pytest.raises(TypeError):
            store.append(a, config_for(a, bad={1, 2}), author="ana")
        assert not store.exists(a)

    def test_expected_version_saves_only_over_that_version(
        self, store: Store, addr: MakeAddress
    ) -> None:
        a = addr("x")
        assert store.append(a, config_for(a, n=1), author="ana", expected_version=0).version == 1
        assert store.append(a, config_for(a, n=2), author="ana", expected_version=1).version == 2
        with pytest.raises(VersionConflictError) as info:
            store.append(a, config_for(a, n=3), author="ana", expected_version=1)
        assert (info.value.address, info.value.expected, info.value.current) == (str(a), 1, 2)
        with pytest.raises(VersionConflictError) as info:
            store.append(a, config_for(a, n=3), author="ana", expected_version=0)
        assert info.value.current == 2
        assert [v.version for v in store.history(a)] == [2, 1]
        assert store.read(a)["n"] == 2

    def test_expected_version_of_a_missing_address(self, store: Store, addr: MakeAddress) -> None:
        a = addr("y")
        with pytest.raises(VersionConflictError) as info:
            store.append(a, config_for(a), author="ana", expected_version=3)
        assert info.value.current is None
        assert not store.exists(a)
        assert store.ls(addr()) == []
        store.append(a, config_for(a), author="ana")
        store.delete(a)
        # Deleting removes every version: the next save is version 1 again, over "nothing".
        assert store.append(a, config_for(a), author="ana", expected_version=0).version == 1
