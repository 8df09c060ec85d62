"""Which daemon a worker belongs to, for code that runs there.

The daemon puts its instance id (new at each start) and its folder in its workers'
environment. A cluster object pickled on a client carries the instance id of the daemon it
reached; unpickled in a worker of that very daemon, it reaches the daemon on this machine
(``LocalHost`` in that folder) instead of over SSH or the network, and folders on that
cluster read its disk directly.
"""

from __future__ import annotations

import os

INSTANCE_VARIABLE = "RUNHOUSE_DAEMON_INSTANCE"
DIR_VARIABLE = "RUNHOUSE_DAEMON_DIR"


def mark(instance_id: str, root: str) -> None:
    """Record, for the workers this process starts, the daemon they belong to."""
    os.environ[INSTANCE_VARIABLE] = instance_id
    os.environ[DIR_VARIABLE] = root


def instance() -> str | None:
    """The instance id of the daemon this process belongs to (None outside a daemon)."""
    return os.environ.get(INSTANCE_VARIABLE)


def daemon_dir() -> str | None:
    """The folder of the daemon this process belongs to (None outside a daemon)."""
    return os.environ.get(DIR_VARIABLE)


def is_home(instance_id: str | None) -> bool:
    """Whether ``instance_id`` is the daemon this process belongs to."""
    mine = instance()
    return mine is not None and instance_id == mine
