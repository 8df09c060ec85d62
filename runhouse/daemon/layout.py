"""Where a local daemon keeps its files: token, pidfile, info, log, lock.

    ~/.rh/daemon/token        the bearer token (mode 600), created at first start
    ~/.rh/daemon/daemon.pid   the daemon's pid while it runs
    ~/.rh/daemon/daemon.json  pid, host, port, version and start time while it runs
    ~/.rh/daemon/daemon.log   what the daemon and its workers print (background starts)
    ~/.rh/daemon/daemon.lock  held by the running daemon: one daemon per folder

The folder is the ``daemon_dir`` setting (``RH_DAEMON_DIR``), default ``~/.rh/daemon``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runhouse.config import configs
from runhouse.fileio import atomic_write, read_json_object


def default_dir() -> Path:
    """The local daemon's folder, from the ``daemon_dir`` setting."""
    configured = configs.get("daemon_dir")
    return Path(configured).expanduser() if configured else Path.home() / ".rh" / "daemon"


@dataclass(frozen=True)
class DaemonFiles:
    """The paths of one daemon folder."""

    root: Path

    @property
    def token(self) -> Path:
        """The bearer token file."""
        return self.root / "token"

    @property
    def info(self) -> Path:
        """The JSON file describing the running daemon."""
        return self.root / "daemon.json"

    @property
    def pid(self) -> Path:
        """The pidfile."""
        return self.root / "daemon.pid"

    @property
    def log(self) -> Path:
        """The log file of background starts."""
        return self.root / "daemon.log"

    @property
    def lock(self) -> Path:
        """The single-instance lock."""
        return self.root / "daemon.lock"

    def ensure_root(self) -> None:
        """Create the folder, private to this user."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def read_token(self) -> str | None:
        """The token, if the daemon has made one."""
        try:
            return self.token.read_text().strip() or None
        except FileNotFoundError:
            return None

    def ensure_token(self) -> str:
        """The token, created (random, mode 600) if missing."""
        existing = self.read_token()
        if existing:
            return existing
        token = secrets.token_urlsafe(32)
        atomic_write(self.token, token + "\n", mode=0o600)
        return token

    def read_info(self) -> dict[str, Any] | None:
        """What the running daemon wrote about itself, if anything."""
        return read_json_object(self.info)

    def write_info(self, info: dict[str, Any]) -> None:
        """Record the running daemon's pid and address."""
        atomic_write(self.pid, f"{info['pid']}\n")
        atomic_write(self.info, json.dumps(info, sort_keys=True) + "\n")

    def clear_info(self) -> None:
        """Remove the pidfile and info at shutdown."""
        for path in (self.info, self.pid):
            path.unlink(missing_ok=True)
