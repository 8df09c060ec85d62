"""Engines start env workers and carry requests to them: ``process`` (child processes of
the daemon, one host) and ``ray`` (Ray actors placed by resources over a Ray cluster's nodes).
"""

from __future__ import annotations

from pathlib import Path

from runhouse.daemon.engines.base import Engine
from runhouse.wire.engine import EngineChoice


def make(choice: EngineChoice, root: Path) -> Engine:
    """The engine ``choice`` names; ``root`` is the daemon's folder (Ray's files go there)."""
    if choice.engine == "ray":
        from runhouse.daemon.engines.ray import RayEngine  # imports ray: only for this engine

        return RayEngine(choice.ray_address, root)
    from runhouse.daemon.engines.process import ProcessEngine

    return ProcessEngine()
