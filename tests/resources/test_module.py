"""Modules against a real daemon: remote construction, state, every kind of member."""

from __future__ import annotations

import asyncio

import pytest

import runhouse as rh


class Counter:
    """A plain user class, sent with rh.module."""

    unit = "clicks"

    def __init__(self, start: int = 0) -> None:
        self.count = start

    def increment(self, by: int = 1) -> int:
        print(f"incrementing by {by}")
        self.count += by
        return self.count

    @property
    def doubled(self) -> int:
        return self.count * 2

    @classmethod
    def kind(cls) -> str:
        return cls.__name__

    @staticmethod
    def add(a: int, b: int) -> int:
        return a + b

    def countdown(self):  # type: ignore[no-untyped-def]
        yield from range(self.count, 0, -1)

    async def later(self, x: int) -> int:
        await asyncio.sleep(0)
        return self.count + x


class Model(rh.Module):
    """A subclass of rh.Module: built here, sent with its state."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.calls = 0

    def predict(self, x: int) -> int:
        self.calls += 1
        return x * self.size


def test_remote_construction_and_state(
    cluster: rh.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    Remote = rh.module(Counter).to(cluster)
    counter = Remote(start=1, name="counter")
    assert "counter" in cluster.keys()
    assert counter.increment(2) == 3
    assert counter.increment() == 4  # state stays on the cluster
    assert "incrementing by 2" in capsys.readouterr().out
    assert counter.remote.count == 4
    counter.remote.count = 10
    assert counter.increment() == 11
    assert counter.count == 11  # a plain attribute reads remotely too


def test_members_of_every_kind(cluster: rh.Cluster) -> None:
    counter = rh.module(Counter).to(cluster)(start=3, name="c")
    assert counter.doubled == 6  # property, evaluated remotely
    assert counter.kind() == "Counter"  # classmethod
    assert counter.add(2, 5) == 7  # staticmethod
    assert counter.unit == "clicks"  # class attribute
    assert list(counter.countdown()) == [3, 2, 1]  # generator method
    assert asyncio.run(counter.later(4)) == 7  # async method


def test_two_instances_are_independent(cluster: rh.Cluster) -> None:
    Remote = rh.module(Counter).to(cluster)
    a, b = Remote(start=0, name="a"), Remote(start=100, name="b")
    a.increment(5)
    assert (a.remote.count, b.remote.count) == (5, 100)
    anonymous = Remote()
    assert anonymous.key.startswith("counter@") and anonymous.increment() == 1


def test_unsent_module_constructs_locally() -> None:
    local = rh.module(Counter)(start=2)
    assert isinstance(local, Counter) and local.increment() == 3


def test_subclassing_rh_module(cluster: rh.Cluster) -> None:
    model = Model(size=3)
    assert model.predict(2) == 6  # a plain local object until sent
    remote = model.to(cluster, name="model")
    assert remote.predict(5) == 15
    assert remote.predict(1) == 3
    assert remote.remote.calls == 3  # its state travelled: one call here, two there
    assert model.calls == 1  # the local instance is untouched


def test_errors_from_methods_and_missing_members(cluster: rh.Cluster) -> None:
    counter = rh.module(Counter).to(cluster)(name="c2")
    with pytest.raises(TypeError):
        counter.increment("x")  # int += str, raised on the cluster
    with pytest.raises(AttributeError):
        _ = counter.remote.no_such_attribute
    with pytest.raises(AttributeError, match="_hidden"):
        counter.call_method("_hidden")  # private names are reachable, this one is missing


def test_saved_module_proxy_reloads(cluster: rh.Cluster) -> None:
    rh.module(Counter).to(cluster)(start=7, name="saved_counter").save()
    loaded = rh.load("saved_counter")
    assert isinstance(loaded, rh.resources.module.RemoteModule)  # type: ignore[attr-defined]
    assert loaded.increment() == 8  # no class here: every attribute is taken as a method
    assert loaded.remote.count == 8


class Picky:
    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("size must be positive")
        self.size = size


def test_a_failed_remote_construction_leaves_no_key(cluster: rh.Cluster) -> None:
    Remote = rh.module(Picky).to(cluster)
    with pytest.raises(ValueError, match="positive"):
        Remote(-1, name="picky")
    assert "picky" not in cluster.keys()
    assert Remote(2, name="picky").remote.size == 2
