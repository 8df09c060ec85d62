"""Whether any node can hold one worker of an env: a pure function of what the env asks
(``compute``) and what the nodes have (``Engine.nodes()`` entries), shared by every engine.

    problem({"GPU": 1}, nodes)   # "no node has all of it: 10.0.0.4 (id 3f2a9c1e) has CPU 8,
                                 #  memory 31.4 GiB (too little GPU)"
    problem({"CPU": 1}, nodes)   # None: some node has it
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runhouse.wire.compute import compute_problem

NODE = "node"  # the compute key that pins workers to a node (its id or address)
_BYTES = frozenset({"memory", "object_store_memory"})
_GIB = 1024**3
_MIN_PREFIX = 6


def asked_resources(compute: Mapping[str, Any]) -> dict[str, float]:
    """The resources ``compute`` asks for (every key but ``node``), by name; zero amounts
    are left out. ``ValueError`` saying what is wrong with a ``compute`` that is not valid."""
    wrong = compute_problem(compute)
    if wrong is not None:
        raise ValueError(wrong)
    return {name: float(n) for name, n in compute.items() if name != NODE and n}


def find_node(pin: str, nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The alive node whose id or address is ``pin``, or whose id alone starts with it (at
    least ``_MIN_PREFIX`` characters: errors show ids by their first 8), if any."""
    alive = [node for node in nodes if node.get("alive", True)]
    for node in alive:
        if pin in (node["id"], node["address"]):
            return node
    if len(pin) >= _MIN_PREFIX:
        starting = [node for node in alive if str(node["id"]).startswith(pin)]
        if len(starting) == 1:
            return starting[0]
    return None


def problem(compute: Mapping[str, Any], nodes: list[dict[str, Any]]) -> str | None:
    """Why no node can ever hold one worker asking for ``compute``, or None if one can."""
    try:
        asked = asked_resources(compute)
    except ValueError as exc:
        return str(exc)
    alive = [node for node in nodes if node.get("alive", True)]
    if not alive:
        return "no node is up"
    pin = compute.get(NODE)
    if pin is not None:
        node = find_node(pin, alive)
        if node is None:
            listed = "; ".join(name(n) for n in alive)
            return f"no node has the id or address {pin!r} (the nodes: {listed})"
        alive = [node]
    for node in alive:
        if not short_of(asked, node["resources"]):
            return None
    details = "; ".join(_shortage(asked, node) for node in alive)
    return f"node {details}" if pin is not None else f"no node has all of it: {details}"


def _shortage(asked: Mapping[str, float], node: Mapping[str, Any]) -> str:
    has = node["resources"]
    lacking = ", ".join(short_of(asked, has))
    return f"{name(node)} has {describe(has, asked)} (too little {lacking})"


def short_of(asked: Mapping[str, float], has: Mapping[str, float]) -> list[str]:
    """The names of the asked resources that ``has`` holds too little of."""
    return [res for res, amount in asked.items() if has.get(res, 0.0) < amount]


def name(node: Mapping[str, Any]) -> str:
    """A node as people read it: its address and the start of its id."""
    if node["id"] == node["address"]:
        return str(node["id"])
    return f"{node['address']} (id {str(node['id'])[:8]})"


def describe(resources: Mapping[str, float], asked: Mapping[str, float] | None = None) -> str:
    """Resources as people read them: ``CPU 8, GPU 1, memory 31.4 GiB, w1 1`` (Ray's
    per-node markers left out, and its object store unless ``asked`` names it)."""
    shown = [
        f"{res} {amount(res, value)}"
        for res, value in sorted(resources.items(), key=lambda item: _order(item[0]))
        if not res.startswith("node:") and (res != "object_store_memory" or res in (asked or {}))
    ]
    return ", ".join(shown) or "nothing"


def amount(resource: str, value: float) -> str:
    """One amount: bytes in GiB for memory, else the number without a needless ``.0``."""
    if resource in _BYTES:
        return f"{value / _GIB:.1f} GiB"
    return f"{value:g}"


def _order(resource: str) -> tuple[int, str]:
    known = ("CPU", "GPU", "memory")
    return (known.index(resource), "") if resource in known else (len(known), resource)
