"""The files a Den keeps in its data folder, besides its database (see ``server``)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from runhouse.fileio import atomic_write, read_json_object


class DenFiles:
    """Paths in one Den data folder, and its info file (pid, URL) while it serves."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()
        self.lock = self.root / "den.lock"
        self.info = self.root / "den.json"
        self.log = self.root / "den.log"

    def ensure_root(self) -> None:
        """Create the folder (mode 700: it holds the admin token and maybe the database)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def read_info(self) -> dict[str, Any] | None:
        """The serving Den's info, or None."""
        return read_json_object(self.info)

    def write_info(self, info: dict[str, Any]) -> None:
        """Record the serving Den's info."""
        atomic_write(self.info, json.dumps(info, indent=2, sort_keys=True), mode=0o600)

    def clear_info(self) -> None:
        """Forget the info (Den stopped)."""
        with contextlib.suppress(FileNotFoundError):
            self.info.unlink()
