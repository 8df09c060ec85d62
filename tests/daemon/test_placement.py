"""Whether some node can hold an env's worker: the pure function both engines ask."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from runhouse.daemon.engines.base import EnvSpec
from runhouse.daemon.engines.placement import describe, problem
from runhouse.daemon.engines.process import ProcessEngine
from runhouse.exceptions import PlacementError

GIB = 1024**3


def node(id: str, address: str, alive: bool = True, **resources: float) -> dict[str, Any]:
    return {
        "id": id,
        "address": address,
        "head": False,
        "alive": alive,
        "resources": resources,
        "available": None,
        "load_1m": None,
    }


HEAD = node("a1b2c3d4e5f6", "10.0.0.4", CPU=8, memory=32 * GIB, object_store_memory=GIB)
GPU_BOX = node("f0e1d2c3b4a5", "10.0.0.5", CPU=4, GPU=2, memory=16 * GIB, trainer=1)
GONE = node("0badc0ffee00", "10.0.0.6", alive=False, CPU=64, GPU=8)
NODES = [HEAD, GPU_BOX, GONE]


@pytest.mark.parametrize(
    ("compute", "fits"),
    [
        ({}, True),
        ({"CPU": 8}, True),  # all of one node
        ({"CPU": 0.5, "GPU": 0.5}, True),  # fractions
        ({"CPU": 4, "GPU": 2, "trainer": 1}, True),  # custom resources
        ({"memory": 32 * GIB}, True),
        ({"GPU": 0}, True),  # zero asks nothing
        ({"node": "10.0.0.5"}, True),  # by address
        ({"node": "a1b2c3d4e5f6", "CPU": 2}, True),  # by id
        ({"node": "a1b2c3d4", "CPU": 2}, True),  # by the start of its id, as errors show it
        ({"node": "a1b2c"}, False),  # too short a start to tell
        ({"CPU": 9}, False),  # more than any node has
        ({"CPU": 8, "GPU": 1}, False),  # each node has a part, none has all
        ({"GPU": 8}, False),  # only a dead node had that many
        ({"node": "10.0.0.4", "GPU": 1}, False),  # the pinned node lacks it
        ({"node": "10.0.0.9"}, False),  # no such node
        ({"node": "0badc0ffee00"}, False),  # a dead node
        ({"trainer": 2}, False),
        ({"CPU": -1}, False),  # not an amount
        ({"CPU": "two"}, False),
    ],
)
def test_fits_when_one_alive_node_has_everything_asked(compute: dict[str, Any], fits: bool) -> None:
    assert (problem(compute, NODES) is None) is fits


def test_the_refusal_says_what_each_node_has_and_lacks() -> None:
    why = problem({"CPU": 8, "GPU": 1}, NODES)
    assert why is not None and why.startswith("no node has all of it:")
    assert "10.0.0.4 (id a1b2c3d4) has CPU 8, memory 32.0 GiB (too little GPU)" in why
    assert "10.0.0.5 (id f0e1d2c3) has CPU 4, GPU 2, memory 16.0 GiB, trainer 1" in why
    assert "too little CPU" in why
    assert "10.0.0.6" not in why  # dead nodes are not candidates


def test_a_pin_to_an_unknown_node_lists_the_nodes() -> None:
    why = problem({"node": "10.0.0.9"}, NODES)
    assert why == (
        "no node has the id or address '10.0.0.9' (the nodes: 10.0.0.4 (id a1b2c3d4); "
        "10.0.0.5 (id f0e1d2c3))"
    )


def test_a_pinned_node_that_lacks_it_is_named() -> None:
    why = problem({"node": "10.0.0.4", "GPU": 1}, NODES)
    assert why == "node 10.0.0.4 (id a1b2c3d4) has CPU 8, memory 32.0 GiB (too little GPU)"


def test_no_node_up() -> None:
    assert problem({"CPU": 1}, [GONE]) == "no node is up"


def test_describe_leaves_out_rays_markers_and_formats_bytes() -> None:
    resources = {"node:10.0.0.4": 1.0, "memory": 1.5 * GIB, "CPU": 2.0, "w1": 0.5}
    assert describe(resources) == "CPU 2, memory 1.5 GiB, w1 0.5"
    assert describe({"object_store_memory": GIB}, {"object_store_memory": 1.0}) == (
        "object_store_memory 1.0 GiB"
    )
    assert describe({}) == "nothing"


def test_the_process_engine_has_one_node_this_machine() -> None:
    engine = ProcessEngine()
    (this,) = asyncio.run(engine.nodes())
    assert this["id"] == "local" and this["head"] and this["alive"]
    assert this["resources"]["CPU"] == os.cpu_count()
    assert this["resources"]["memory"] > GIB
    asyncio.run(engine.check(EnvSpec("small", compute={"CPU": 1, "node": "local"})))
    with pytest.raises(PlacementError) as refused:
        asyncio.run(engine.check(EnvSpec("big", compute={"CPU": 10_000})))
    assert refused.value.env == "big" and refused.value.asked == {"CPU": 10_000}
    assert f"(id local) has CPU {os.cpu_count()}" in str(refused.value)
