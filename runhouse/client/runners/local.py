"""The local runner: commands in a bash subprocess, files copied with rsync (or shutil)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from runhouse.client.runners.base import CommandRunner, run_rsync
from runhouse.exceptions import CommandError


class LocalRunner(CommandRunner):
    """Runs commands on this machine."""

    def argv(self, command: str) -> list[str]:
        """``bash -c command``."""
        return ["bash", "-c", command]

    def rsync(
        self,
        source: str,
        dest: str,
        up: bool = True,
        gitignore: bool = True,
        progress: Callable[[int], None] | None = None,
        compress: bool = True,
    ) -> None:
        """Copy ``source`` to ``dest`` on this machine (direction does not matter here, nor
        compression); ``progress`` gets the bytes copied so far (from rsync, when it is here)."""
        src, dst = Path(source).expanduser(), Path(dest).expanduser()
        dst.parent.mkdir(parents=True, exist_ok=True)  # rsync makes only the last level
        if shutil.which("rsync"):
            command = ["rsync", "-a"] + (["--filter=:- .gitignore"] if gitignore else [])
            command += [_as_dir(src), str(dst)]
            returncode, _, stderr = run_rsync(command, None, progress)
            if returncode != 0:
                raise CommandError(" ".join(command), returncode, stderr)
        elif src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def _as_dir(path: Path) -> str:
    # rsync copies a folder's contents when the source ends with a slash.
    return f"{path}/" if path.is_dir() else str(path)
