"""Values on this machine, for this user: ``~/.rh/secrets/``, folders 700 and files 600.

    ~/.rh/secrets/local-<project>/team/openai/00000003.json    version 3 of ~/team/openai
    ~/.rh/secrets/den-<server>/ana/aws/00000001.json           version 1 of /ana/aws

``<project>`` is a short hash of the project's ``rh/`` folder (the local store), ``<server>``
of Den's URL: two projects' ``~/openai`` are two secrets. Each version is one JSON file,
written to a temporary file (600 from its creation) and renamed into place.

Another machine (or user) has none of these files: loading the secret's config there works
(it is in the project's ``rh/`` folder, maybe in git), and reading its values raises
``SecretValuesMissingError``, which says where they are and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from runhouse.config import configs
from runhouse.exceptions import ConfigError, SecretValuesMissingError
from runhouse.names.address import Address
from runhouse.names.local import LocalStore
from runhouse.names.resolver import store_for
from runhouse.secrets.backends.base import SecretBackend

_VERSION = re.compile(r"^(\d{8})\.json$")
_FOLDER_MODE = 0o700
_FILE_MODE = 0o600


class LocalBackend(SecretBackend):
    """Values as files under ``root`` (default ``~/.rh/secrets``, read at each use)."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        """The folder every secret's values are under."""
        return self._root if self._root is not None else Path.home() / ".rh" / "secrets"

    def folder(self, address: Address) -> Path:
        """The folder holding the versions of ``address``."""
        return self.root / _scope(address) / Path(*address.parts)

    def describe(self, address: Address) -> str:
        """The folder of ``address``'s versions."""
        return str(self.folder(address))

    def put(self, address: Address, version: int, values: Mapping[str, str]) -> None:
        """Write version ``version``'s values atomically, readable by this user only."""
        folder = self.folder(address)
        _private_folders(folder, self.root)
        payload = json.dumps({"values": dict(values)}, sort_keys=True).encode()
        fd, temporary = tempfile.mkstemp(prefix=".values.", suffix=".tmp", dir=folder)
        try:  # mkstemp makes the file 600: never readable by others, even for a moment
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, folder / f"{version:08d}.json")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def get(self, address: Address, version: int | None = None) -> dict[str, str]:
        """The values of ``version`` (default: the newest kept here)."""
        folder = self.folder(address)
        if version is None:
            versions = _versions(folder)
            if not versions:
                raise SecretValuesMissingError(str(address), None, str(folder))
            version = versions[-1]
        path = folder / f"{version:08d}.json"
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise SecretValuesMissingError(str(address), version, str(path)) from None
        except ValueError:
            # The parser's message would quote the file: its contents are secret.
            raise ConfigError(
                f"{path} does not parse; delete it, save the secret again", path
            ) from None
        values = record.get("values") if isinstance(record, dict) else None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} holds no values; delete it and save the secret again", path)
        return {str(k): str(v) for k, v in values.items()}

    def delete(self, address: Address) -> None:
        """Remove every version's file, then the folders left empty."""
        folder = self.folder(address)
        for version in _versions(folder):
            (folder / f"{version:08d}.json").unlink(missing_ok=True)
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty: other secrets (or versions being written) are there
            folder = folder.parent


def _scope(address: Address) -> str:
    """Which store's secret this is: a project's ``rh/`` folder, or a Den server."""
    store = store_for(address)
    if isinstance(store, LocalStore):
        where = str(store.root.resolve())
    else:
        where = str(configs.get("den_url") or "").rstrip("/")
    return f"{address.store}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def _private_folders(folder: Path, root: Path) -> None:
    """Make ``folder`` and its parents up from ``root`` (``root`` too), each mode 700."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=_FOLDER_MODE, exist_ok=True)  # another process may make it too
        os.chmod(path, _FOLDER_MODE)  # mkdir's mode is cut by the umask
    if root.exists() and root.stat().st_mode & 0o077:
        os.chmod(root, _FOLDER_MODE)


def _versions(folder: Path) -> list[int]:
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(m.group(1)) for name in names if (m := _VERSION.match(name)))
