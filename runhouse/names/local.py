"""The local store: ``rh/<path>/config.json`` in the working dir, versions beside it.

    rh/team/x/config.json                 the current config (sorted, indented JSON)
    rh/team/x/.history/00000001.json      every save: version, timestamp, author, config
    rh/team/x/y/config.json               a resource in folder ~/team/x (folders nest freely)

The layout is plain files so that configs can be read, diffed and committed with the code.
Saves to one address are serialised by a lock on its folder, so two processes saving at once
get contiguous version numbers and every file is whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runhouse.exceptions import (
    ConfigError,
    CorruptConfigError,
    InvalidNameError,
    ResourceExistsError,
    ResourceNotFoundError,
    VersionConflictError,
    VersionNotFoundError,
)
from runhouse.fileio import atomic_write, locked_dir
from runhouse.names.address import Address
from runhouse.names.folders import working_dir
from runhouse.names.store import Entry, ResourceVersion, Store

CONFIG_FILE = "config.json"
HISTORY_DIR = ".history"
_VERSION_FILE = re.compile(r"^(\d+)\.json$")


def dump_json(data: Any) -> str:
    """The on-disk JSON form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_json(path: Path) -> Any:
    """Parse a JSON file, naming the file and line when it is corrupt."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptConfigError(path, exc.lineno, f"{exc.msg} (column {exc.colno})") from exc


class LocalStore(Store):
    """Configs as files under ``<working dir>/rh`` (or a given root)."""

    kind = "local"

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        """The ``rh/`` folder this store reads and writes."""
        return self._root if self._root is not None else working_dir() / "rh"

    def folder(self, address: Address) -> Path:
        """The directory that holds ``address``'s config."""
        return self.root.joinpath(*address.parts)

    def describe(self, address: Address) -> str:
        """The path of ``address``'s config file."""
        return str(self.folder(address) / CONFIG_FILE)

    def read(self, address: Address) -> dict[str, Any]:
        """The current config saved at ``address``."""
        path = self.folder(address) / CONFIG_FILE
        try:
            config = load_json(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ResourceNotFoundError(
                str(address), str(path), self._folder_hint(address)
            ) from None
        if not isinstance(config, dict):
            raise ConfigError(f"{path} must hold a JSON object, not {type(config).__name__}.", path)
        return config

    def exists(self, address: Address) -> bool:
        """Whether ``address`` has a config file."""
        return (self.folder(address) / CONFIG_FILE).is_file()

    def append(
        self,
        address: Address,
        config: dict[str, Any],
        author: str,
        overwrite: bool = True,
        expected_version: int | None = None,
    ) -> ResourceVersion:
        """Write ``config`` as the next numbered version and make it current."""
        text = dump_json(config)  # fail on a non-JSON value before touching any file
        with locked_dir(self.folder(address)) as folder:
            config_path = folder / CONFIG_FILE
            exists = config_path.exists()
            if not overwrite and exists:
                raise ResourceExistsError(str(address))
            numbers = self._numbers(folder)
            if expected_version is not None:
                current = numbers[-1] if exists and numbers else 0
                if current != expected_version or (expected_version == 0 and exists):
                    if not exists:
                        self._prune(folder)  # the lock made the folder; leave no empty one
                    raise VersionConflictError(str(address), expected_version, current or None)
            saved = ResourceVersion(
                version=(numbers[-1] + 1) if numbers else 1,
                timestamp=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                author=author,
                config=json.loads(text),
            )
            # The version file first: a crash between the two writes leaves history complete.
            atomic_write(self._version_path(folder, saved.version), dump_json(_record(saved)))
            atomic_write(config_path, text)
        return saved

    def history(self, address: Address, limit: int | None = None) -> list[ResourceVersion]:
        """Saved versions of ``address``, newest first."""
        folder = self.folder(address)
        if not (folder / CONFIG_FILE).exists():
            raise ResourceNotFoundError(str(address), self.describe(address))
        numbers = self._numbers(folder)[::-1]
        if limit is not None:
            numbers = numbers[: max(limit, 0)]
        return [self._read_version(folder, n) for n in numbers]

    def version(self, address: Address, number: int) -> ResourceVersion:
        """One saved version of ``address`` by number."""
        folder = self.folder(address)
        if not (folder / CONFIG_FILE).exists():
            raise ResourceNotFoundError(str(address), self.describe(address))
        if not isinstance(number, int) or not self._version_path(folder, number).is_file():
            raise VersionNotFoundError(str(address), number, self._numbers(folder))
        return self._read_version(folder, number)

    def delete(self, address: Address) -> bool:
        """Remove ``address``'s config and history; sub-folders and their resources stay."""
        folder = self.folder(address)
        if not folder.is_dir():
            return False
        with locked_dir(folder):
            config_path = folder / CONFIG_FILE
            existed = config_path.exists()
            shutil.rmtree(folder / HISTORY_DIR, ignore_errors=True)
            config_path.unlink(missing_ok=True)
        self._prune(folder)
        return existed

    def ls(self, folder: Address) -> list[Entry]:
        """Resources and sub-folders directly in ``folder``; corrupt configs are flagged."""
        base = self.folder(folder)
        try:
            children = sorted(p for p in base.iterdir() if p.is_dir() and _visible(p.name))
        except (FileNotFoundError, NotADirectoryError):
            return []
        entries: list[Entry] = []
        for child in children:
            try:
                address = str(folder.child(child.name))
            except InvalidNameError:
                continue  # a stray folder that no name could address
            if (child / CONFIG_FILE).exists():
                entries.append(self._entry(child, address))
            if any(p.is_dir() and _visible(p.name) for p in child.iterdir()):
                entries.append(Entry(name=child.name + "/", address=address, kind="folder"))
        return entries

    def _entry(self, folder: Path, address: str) -> Entry:
        numbers = self._numbers(folder)
        try:
            config = load_json(folder / CONFIG_FILE)
        except CorruptConfigError as exc:
            return Entry(name=folder.name, address=address, kind="corrupt", error=str(exc))
        if not isinstance(config, dict):
            error = f"{folder / CONFIG_FILE} holds a JSON {type(config).__name__}, not an object"
            return Entry(name=folder.name, address=address, kind="corrupt", error=error)
        rtype = config.get("resource_type")
        return Entry(
            name=folder.name,
            address=address,
            kind="resource",
            resource_type=rtype if isinstance(rtype, str) else None,
            version=numbers[-1] if numbers else None,
        )

    def _folder_hint(self, address: Address) -> str:
        folder = self.folder(address)
        if not folder.is_dir():
            return ""
        names = [e.name for e in self.ls(address)]
        if not names:
            return ""
        return f"{str(address)!r} is a folder holding: {', '.join(names[:10])}."

    @staticmethod
    def _numbers(folder: Path) -> list[int]:
        try:
            names = os.listdir(folder / HISTORY_DIR)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := _VERSION_FILE.match(n)))

    @staticmethod
    def _version_path(folder: Path, number: int) -> Path:
        return folder / HISTORY_DIR / f"{number:08d}.json"

    def _read_version(self, folder: Path, number: int) -> ResourceVersion:
        path = self._version_path(folder, number)
        record = load_json(path)
        try:
            return ResourceVersion(
                version=int(record["version"]),
                timestamp=str(record["timestamp"]),
                author=str(record["author"]),
                config=dict(record["config"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{path} is not a version record (needs version, timestamp, author, config).", path
            ) from exc

    def _prune(self, folder: Path) -> None:
        # Remove folders left empty, up to (not including) the store root. A concurrent save
        # that re-created one simply makes rmdir fail, which is what we want.
        root = self.root
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


def _record(saved: ResourceVersion) -> dict[str, Any]:
    return {
        "author": saved.author,
        "config": saved.config,
        "timestamp": saved.timestamp,
        "version": saved.version,
    }


def _visible(name: str) -> bool:
    return not name.startswith(".")
