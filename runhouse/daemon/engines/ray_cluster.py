"""Joining a Ray cluster as its driver, and what the daemon asks the cluster: its nodes
and their free resources, an actor's state.

Ray answers some of these only through its DeveloperAPI (``ray._private.state``): the one
view of per-node free resources and of actor states that does not need its dashboard.
"""

from __future__ import annotations

import logging
import os
import site
import socket
from pathlib import Path
from typing import Any

import ray
from ray._private import ray_constants

from runhouse import fileio
from runhouse.exceptions import EngineError
from runhouse.wire import home

JOIN_TIMEOUT = 5.0  # seconds for a Ray cluster's address to answer at all


def join(address: str | None) -> None:
    """Connect this process to the Ray cluster at ``address`` as its driver (on a thread:
    then Ray leaves the daemon's SIGTERM handling alone); ``EngineError`` saying why not."""
    namespace = f"runhouse-{home.instance() or os.getpid()}"
    _reachable(str(address))  # ray.init would retry an address nothing answers for minutes
    _same_auth_as_ray_start()
    # Without Ray's crash handler, which prints a stack dump at every `runhouse stop`.
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True  # read by ray.init, not before
    quiet = _Unless("SIGTERM handler is not set")
    logging.getLogger("ray._private.worker").addFilter(quiet)
    try:
        ray.init(
            address=address,
            namespace=namespace,
            log_to_driver=False,
            configure_logging=False,
            include_dashboard=False,
        )
    except Exception as exc:
        raise EngineError("ray", _join_failure(address, exc)) from exc
    finally:
        logging.getLogger("ray._private.worker").removeFilter(quiet)


def _same_auth_as_ray_start() -> None:
    # `ray start` turns token authentication on when RAY_AUTH_MODE is unset and a token is
    # saved (~/.ray/auth_token); a driver joining with ray.init does not (Ray 2.60), and is
    # then refused. The same rule here keeps the daemon in step with the heads on its host.
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def cluster_nodes() -> list[dict[str, Any]]:
    """The alive nodes of the Ray cluster this process is connected to (``Engine.nodes``)."""
    # Ray's DeveloperAPI: the one per-node view of free resources without its dashboard.
    from ray._private.state import available_resources_per_node

    free = available_resources_per_node()
    found = []
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        total = {k: v for k, v in node["Resources"].items() if not k.startswith("node:")}
        available = free.get(node["NodeID"])
        found.append(
            {
                "id": node["NodeID"],
                "address": node["NodeManagerAddress"],
                "head": "node:__internal_head__" in node["Resources"],
                "alive": True,
                "resources": total,
                "available": None
                if available is None
                else {k: available.get(k, 0.0) for k in total},
                "load_1m": None,
            }
        )
    return found


def actor_state(actor: Any) -> str | None:
    """Ray's state of an actor (``PENDING_CREATION``, ``ALIVE``, ``DEAD``...), if known."""
    from ray._private.state import actors  # DeveloperAPI, as available_resources_per_node

    try:
        return str(actors(actor._actor_id.hex())["State"])
    except Exception:  # a debugging view: its absence must not hide the real error
        return None


def write_site(folder: Path) -> None:
    """A ``sitecustomize`` that adds the daemon's site folders after a venv's own, so an
    env's venv runs Ray's worker with the daemon's Ray (its packages stay first)."""
    folders = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = [
        '"""Written by the runhouse daemon (Ray engine): the daemon\'s packages, after the',
        'venv\'s own, for Ray\'s worker process."""',
        "import site",
        *(f"site.addsitedir({folder!r})" for folder in folders),
    ]
    fileio.atomic_write(folder / "sitecustomize.py", "\n".join(lines) + "\n")


def _reachable(address: str) -> None:
    """``EngineError`` at once if nothing answers at the Ray cluster's ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=JOIN_TIMEOUT):
            return
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    raise EngineError(
        "ray",
        f"Could not join the Ray cluster at {address}: nothing answers there ({why}). Start "
        "it first (ray start --head), fix ray_address, or leave ray_address unset to let "
        "the daemon start a Ray head of its own.",
    )


def _join_failure(address: str | None, exc: Exception) -> str:
    text = str(exc).strip()
    if "version mismatch" in text.lower():
        return (
            f"The Ray cluster at {address} runs another Ray or Python version than this "
            f"daemon (Ray {ray.__version__}). {text}\nInstall the cluster's Ray version "
            "next to runhouse on this host, or join a cluster that runs this daemon's."
        )
    return (
        f"Could not join the Ray cluster at {address}: {text}. If it uses token "
        "authentication, give the daemon its token (RAY_AUTH_TOKEN, or ~/.ray/auth_token)."
    )


class _Unless(logging.Filter):
    """Drops log records that start with a given text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.text)
