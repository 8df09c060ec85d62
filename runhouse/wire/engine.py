"""Which engine runs a daemon's env workers: shared by both sides, as ``exposure`` is.

The client turns a cluster's ``engine=``/``ray_address=`` into the daemon's flags; the
daemon parses them back and refuses a bad combination before it listens.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

ENGINES = ("process", "ray")


@dataclass(frozen=True)
class EngineChoice:
    """The engine a daemon uses, and the Ray cluster it joins (None: it starts its own)."""

    engine: str = "process"
    ray_address: str | None = None  # "host:port" of a running Ray cluster's GCS

    def argv(self) -> list[str]:
        """The daemon's command-line flags for this choice."""
        flags = ["--engine", self.engine]
        if self.ray_address:
            flags += ["--ray-address", self.ray_address]
        return flags

    def problem(self) -> str | None:
        """Why a daemon must not start with this choice, or None."""
        if self.engine not in ENGINES:
            return f"engine must be one of {ENGINES}, not {self.engine!r}"
        if self.ray_address and self.engine != "ray":
            return '--ray-address joins a Ray cluster: it needs --engine ray (engine="ray")'
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The engine flags, for the daemon and ``runhouse start``."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="process",
        help="run env workers as child processes (process) or as Ray actors (ray)",
    )
    parser.add_argument(
        "--ray-address",
        help="with --engine ray: join this running Ray cluster (host:port) instead of "
        "starting a Ray head",
    )


def from_arguments(args: argparse.Namespace) -> EngineChoice:
    """The engine choice parsed flags describe."""
    return EngineChoice(engine=args.engine, ray_address=args.ray_address)
