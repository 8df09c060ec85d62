"""The versions both sides of a call must agree on, and the check that compares them.

Code sent by value is Python bytecode pickled by cloudpickle, so the client and the env's
worker need the same Python minor version and compatible cloudpickle; frames and configs
need the same runhouse.
"""

from __future__ import annotations

import sys

from runhouse._version import __version__
from runhouse.exceptions import VersionMismatchError


def local_versions() -> dict[str, str]:
    """This process's Python (major.minor), cloudpickle and runhouse versions."""
    import cloudpickle

    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "cloudpickle": str(cloudpickle.__version__),
        "runhouse": __version__,
    }


def check(client: dict[str, str], env: dict[str, str], env_name: str) -> None:
    """Raise ``VersionMismatchError`` if the two sides would not understand each other."""
    problems: list[tuple[str, str, str | None]] = []
    if client["python"] != env.get("python"):
        problems.append(("python", client["python"], env.get("python")))
    if _minor(client["cloudpickle"]) != _minor(env.get("cloudpickle") or ""):
        problems.append(("cloudpickle", client["cloudpickle"], env.get("cloudpickle")))
    if client["runhouse"] != env.get("runhouse"):
        problems.append(("runhouse", client["runhouse"], env.get("runhouse")))
    if problems:
        raise VersionMismatchError(env_name, problems)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
