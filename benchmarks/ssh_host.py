"""A throwaway SSH host for benchmarks: the tests' real sshd (tests/sshd.py) on a free port.

Needs root, openssh-server and rsync, like the SSH tests (scripts/test installs them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.sshd

from tests import sshd


def available() -> str | None:
    """Why no SSH host can be started here, or None if one can."""
    if os.geteuid() != 0:
        return "needs root (to create the host's user)"
    if not shutil.which("rsync") or not os.path.exists(sshd.SSHD):
        return "needs openssh-server and rsync"
    return None


@contextlib.contextmanager
def ssh_host(user: str = "rhbench1") -> Iterator[Any]:
    """A running sshd for a fresh ``user`` (empty home); stopped and removed afterwards."""
    from runhouse.client.runners.ssh import close_all

    root = sshd.make_root()
    control = root / "cm"
    control.mkdir(mode=0o700)
    previous = os.environ.get("RH_SSH_CONTROL_DIR")
    os.environ["RH_SSH_CONTROL_DIR"] = str(control)
    host = sshd.start_host(root, "bench", user, sshd.client_key(root))
    try:
        yield host
    finally:
        close_all(control)
        if previous is None:
            os.environ.pop("RH_SSH_CONTROL_DIR", None)
        else:
            os.environ["RH_SSH_CONTROL_DIR"] = previous
        host.stop()
        sshd.remove(root)


def cluster_on(host: Any, name: str | None = None) -> Any:
    """A Runhouse cluster on ``host`` (tunnelled, free remote port)."""
    import runhouse as rh

    creds = {"ssh_user": host.user, "ssh_private_key": str(host.key)}
    return rh.cluster(
        name=name, host="127.0.0.1", ssh_creds=creds, ssh_port=host.port, server_port=0
    )
