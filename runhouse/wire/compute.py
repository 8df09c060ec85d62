"""An env's ``compute`` (what each of its workers needs, and where) and ``replicas``: the
rules both sides apply, the client when an env is made, the daemon when one is declared.

    normalize({"cpus": 2, "gpu": 1, "node": "10.0.0.5"})
    == {"CPU": 2, "GPU": 1, "node": "10.0.0.5"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_REPLICAS = 256
# The names Ray gives its built-in resources, and the spellings people use for them.
_ALIASES = {"cpu": "CPU", "cpus": "CPU", "gpu": "GPU", "gpus": "GPU", "mem": "memory"}


def normalize(compute: Mapping[str, Any] | None) -> dict[str, Any]:
    """``compute`` with the usual spellings of CPU, GPU and memory made canonical;
    ``ValueError`` saying what is wrong if it is not valid."""
    if compute is None:
        return {}
    if not isinstance(compute, Mapping):
        raise ValueError(compute_problem(compute))
    canonical = {_ALIASES.get(str(k).lower(), k): v for k, v in compute.items()}
    problem = compute_problem(canonical)
    if problem is not None:
        raise ValueError(problem)
    return canonical


def compute_problem(compute: Any) -> str | None:
    """What is wrong with an env's ``compute``, or None: resource names mapped to amounts
    (numbers, at least 0; memory in bytes), and ``node`` to a node's id or address."""
    if not isinstance(compute, Mapping):
        example = '{"CPU": 2, "GPU": 1, "node": "10.0.0.5"}'
        return f"compute must be a mapping like {example}, not {compute!r}"
    for key, value in compute.items():
        if not isinstance(key, str) or not key:
            return f"compute's keys must be resource names (or 'node'), not {key!r}"
        if key == "node":
            if not isinstance(value, str) or not value:
                return f"compute['node'] must be a node's id or address, not {value!r}"
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            return f"compute[{key!r}] must be an amount (a number, at least 0), not {value!r}"
    return None


def replicas_problem(replicas: Any) -> str | None:
    """What is wrong with an env's ``replicas``, or None."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        return f"replicas must be a whole number of at least 1, not {replicas!r}"
    if replicas > MAX_REPLICAS:
        return f"replicas must be at most {MAX_REPLICAS}, not {replicas}"
    return None
