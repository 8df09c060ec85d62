"""How a worker's Ray actor ended, in a few words, from Ray's error or from its node.

Ray's messages are long and written for Ray users; the daemon's errors say what happened to
the env's worker. Both functions return the end of a sentence that starts "its Ray actor on
node 10.0.0.5 (id 3f2a9c1e) ...".
"""

from __future__ import annotations

import re
import socket
from typing import Any

import ray
from ray import exceptions as ray_errors

_PROBE_TIMEOUT = 1.0  # seconds to reach a node's raylet before calling it gone
_EXIT_TYPE = re.compile(r"Worker exit type: (\w+)")
_EXIT_DETAIL = re.compile(r"Worker exit detail: (.*?)(?: Some common causes|$)", re.S)
_NODE_DEATH = re.compile(r"its node has died\.[^\n]*\n\s*(.+)")


def actor_cause(error: BaseException | None) -> str | None:
    """What Ray's error on the actor's lifelong call says happened, or None when it does not
    say (the actor unreachable, or no error yet): then ask the node (``lost_contact``)."""
    if error is None or isinstance(error, ray_errors.ActorUnavailableError):
        return None
    if isinstance(error, ray_errors.RuntimeEnvSetupError):
        return f"could not start: Ray could not set up its environment: {_first(error)}"
    if isinstance(error, ray_errors.RayTaskError):  # its call raised: the last line says what
        lines = [line for line in str(error).splitlines() if line.strip()]
        return f"failed: {_squash(lines[-1] if lines else type(error).__name__)}"
    if not isinstance(error, ray_errors.RayActorError):
        return f"ended with {type(error).__name__}: {_first(error)}"
    text = str(error.error_msg)
    if "killed by `ray.kill`" in text:
        return "was killed (ray.kill)"
    node = _NODE_DEATH.search(text)
    if node is not None or "node has died" in text:
        detail = node.group(1).strip() if node is not None else "it left the cluster"
        return f"was lost with its node ({detail})"
    if error.actor_init_failed:
        return f"failed to start: {_squash(text)}"
    kind = _EXIT_TYPE.search(text)
    detail_match = _EXIT_DETAIL.search(text)
    detail = _squash(detail_match.group(1)) if detail_match else _squash(text)
    if kind is not None and "MEMORY" in kind.group(1):
        return f"was killed by Ray: its node ran low on memory ({detail})"
    if kind is not None and kind.group(1) == "INTENDED_USER_EXIT":
        return f"exited ({detail})"
    return (
        f"died unexpectedly: its process was killed, crashed or ran out of memory (Ray: {detail})"
    )


def lost_contact(node_id: str | None, error: BaseException | None) -> str:
    """Why an actor's connection closed when Ray did not say: its node gone, its node not
    answering, or its process gone while the node is fine."""
    node = _node(node_id)
    if node is None or not node.get("Alive"):
        detail = (node or {}).get("DeathReasonMessage") or "it left the cluster"
        return f"was lost with its node ({detail})"
    address = (node["NodeManagerAddress"], int(node["NodeManagerPort"]))
    try:
        with socket.create_connection(address, timeout=_PROBE_TIMEOUT):
            pass
    except OSError:
        return (
            "was lost with its node: the node stopped answering (its raylet at "
            f"{address[0]}:{address[1]} is unreachable)"
        )
    said = f" (Ray: {_first(error)})" if error is not None else ""
    return f"closed its connection to the daemon: its process exited{said}"


def _node(node_id: str | None) -> dict[str, Any] | None:
    for node in ray.nodes():
        if node["NodeID"] == node_id:
            return dict(node)
    return None


def _first(error: BaseException | None) -> str:
    text = str(error).strip()
    return _squash(text.splitlines()[0] if text else type(error).__name__)


def _squash(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
