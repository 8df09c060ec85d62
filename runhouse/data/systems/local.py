"""Local disk (``file``): paths are absolute (``~`` expanded, relative ones made absolute
from the current folder); a rename is the operating system's, atomic within a disk."""

from __future__ import annotations

import os
from typing import Any

from runhouse.data.storage import Storage


class LocalStorage(Storage):
    """Files on this machine's disk."""

    scheme = "file"

    def _filesystem(self) -> Any:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(auto_mkdir=True)

    def normalize(self, path: str) -> str:
        """An absolute path (``file://`` and ``~`` allowed)."""
        path = path.removeprefix("file://")
        return os.path.abspath(os.path.expanduser(path))

    def url(self, path: str) -> str:
        """The absolute path itself."""
        return self.normalize(path)

    def rename(self, source: str, dest: str) -> None:
        """``os.replace`` (a folder replacing a folder: the old one goes first)."""
        if os.path.isdir(dest) and not os.path.islink(dest):
            import shutil

            shutil.rmtree(dest)
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        os.replace(source, dest)
