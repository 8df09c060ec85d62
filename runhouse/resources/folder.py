"""``Folder``: files on local disk, on a cluster or in a bucket, moved by the shortest path.

>>> f = rh.folder(path="./data")                     # local disk ("file")
>>> on_c = f.to(c, path="~/data")                     # rsync over SSH, or through the daemon
>>> s = on_c.to("s3", path="bucket/data")             # the cluster uploads it itself
>>> s.put({"b.txt": b"hi"}); s.get("b.txt"); s.ls(full_paths=False)
>>> back = s.to("here", path="./data_copy")           # wherever this code runs

Transfers are in ``runhouse/data/transfers.py``: each writes to a temporary name and renames
at the end, and nothing at the source is deleted except by ``rm`` and ``mv``.

A folder passed to a function on the cluster it lives on reads that cluster's disk there:
when pickled, it records its cluster's daemon instance id (asked of the daemon), and a
worker compares it with its own daemon's (``runhouse/wire/home.py``); the same id means
"this cluster", so ``file`` is used.
"""

from __future__ import annotations

import os
import posixpath
import secrets
from typing import IO, Any

from runhouse.data import trees
from runhouse.data.cluster_files import ClusterFiles
from runhouse.data.storage import Storage, storage_for
from runhouse.data.transfers import Place, copy, same_cluster
from runhouse.exceptions import ResourceNotFoundError, RunhouseError
from runhouse.resources.cluster import Cluster, as_cluster
from runhouse.resources.resource import Resource, looks_like_credential
from runhouse.wire import home

SCHEMES = ("file", "s3", "gs", "azure")
_ALIASES = {"here": "file", "gcs": "gs", "abfs": "azure", "az": "azure"}


class OnASystem(Resource):
    """A resource whose data is on a system (``self.system``: a scheme or a cluster): when
    pickled to a worker of that very cluster, it reads the cluster's disk there directly."""

    system: str | Cluster
    path: str
    data_config: dict[str, Any]
    _instance: str | None = None  # the daemon its cluster had when it was pickled

    def config(self) -> dict[str, Any]:
        """Where the data is: system, path and ``data_config`` without credentials."""
        system = self.system if isinstance(self.system, str) else self.ref(self.system)
        return {
            **super().config(),
            "system": system,
            "path": self.path,
            "data_config": public_options(self.data_config),
        }

    def place(self) -> Place:
        """The system and path its files are read from in this process (on its own
        cluster, inside a worker there: ``file``)."""
        system = "file" if self._on_this_cluster() else self.system
        return Place(system, self.path, self.data_config)

    def _on_this_cluster(self) -> bool:
        return home.is_home(self._instance)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if isinstance(self.system, Cluster) and home.instance() is None:
            state["_instance"] = _instance_of(self.system)
        return state

    def _copy_options(
        self, target: str | Cluster, path: str | None, data_config: dict[str, Any] | None
    ) -> tuple[str | None, dict[str, Any] | None]:
        """The path and ``data_config`` of a copy on ``target``: by default its name in the
        cluster's home, or in the current folder here (a bucket needs a path), and this
        one's storage options for the same kind of system."""
        if data_config is None and isinstance(target, str) and target == self.system:
            data_config = self.data_config
        if path is None and target not in SCHEMES[1:]:
            base = posixpath.basename(self.path.rstrip("/")) or self.resource_type
            path = f"~/{base}" if isinstance(target, Cluster) else os.path.join(os.getcwd(), base)
        return path, data_config


class Folder(OnASystem):
    """A folder of files on a storage system (``file``, ``s3``, ``gs``, ``azure``) or a
    cluster's disk.

    The saved config keeps the system, the path and ``data_config`` without any key that
    looks like a credential (key, secret, token, password, connection_string, account_key,
    credentials, sas...): those stay in memory, and a loaded folder takes its credentials
    from the usual sources (``~/.aws``, ``AWS_*``, application default credentials,
    ``AZURE_STORAGE_CONNECTION_STRING``) or a ``data_config`` given again.
    """

    resource_type = "folder"

    def __init__(
        self,
        path: str | None = None,
        system: Cluster | str | dict[str, Any] | None = None,
        name: str | None = None,
        data_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name=name)
        self.system: str | Cluster = as_system(system)
        self.data_config = dict(data_config or {})
        self.path = as_path(self.system, path, name)

    # -- files -------------------------------------------------------------------------

    def _files(self) -> Storage | ClusterFiles:
        return self.place().files()

    def ls(self, full_paths: bool = True) -> list[str]:
        """The entries directly in the folder: full paths on its system, or names."""
        entries = self._files().ls(self.path)
        return entries if full_paths else [posixpath.basename(e) for e in entries]

    def exists_in_system(self) -> bool:
        """Whether the folder exists on its system."""
        return self._files().exists(self.path)

    def mkdir(self) -> Folder:
        """Make the folder (and its parents) on its system; returns ``self``."""
        self._files().mkdir(self.path)
        return self

    def put(self, contents: dict[str, bytes | str], overwrite: bool = False) -> None:
        """Write files (``{"name": bytes or str}``, names may hold ``/``); a name already
        there is a ``FileExistsError`` and nothing is written, unless ``overwrite``."""
        data = {name: _as_bytes(name, value) for name, value in contents.items()}
        files = self._files()
        if isinstance(files, ClusterFiles):
            files.put_many(self.path, data, overwrite)
        else:
            trees.put_many(files, self.path, data, overwrite)

    def get(self, name: str) -> bytes:
        """The contents of file ``name`` in the folder."""
        files = self._files()
        return files.read_bytes(files.join(self.path, name))

    def open(self, name: str, mode: str = "rb") -> IO[Any]:
        """A file object for ``name`` in the folder (``rb``, ``r``, ``wb``, ``w``), on any
        system; a written file appears whole when it is closed, and not at all if its
        ``with`` block raises."""
        files = self._files()
        return files.open(files.join(self.path, name), mode)

    def rm(self, contents: list[str] | str | None = None) -> None:
        """Remove some entries (names, files or folders) or, without ``contents``, the
        whole folder."""
        files = self._files()
        if contents is None:
            files.rm(self.path, recursive=True)
            return
        for name in [contents] if isinstance(contents, str) else contents:
            files.rm(files.join(self.path, name), recursive=True)

    def sizes(self) -> dict[str, int]:
        """Every file in the folder (relative path) and its size in bytes."""
        files = self._files()
        return (
            files.sizes(self.path)
            if isinstance(files, ClusterFiles)
            else trees.sizes(files, self.path)
        )

    # -- transfers ---------------------------------------------------------------------

    def to(
        self,
        system: Cluster | str,
        path: str | None = None,
        data_config: dict[str, Any] | None = None,
        progress: bool | None = None,
    ) -> Folder:
        """A copy of the folder on ``system`` (a cluster or its name, ``"here"``, ``"file"``,
        ``"s3"``, ``"gs"``, ``"azure"``) at ``path`` (default: the folder's name in the home
        folder there, or the current folder here; a bucket needs ``"bucket/prefix"``),
        replacing what is there. ``data_config`` defaults to this folder's for the same
        kind of system. A transfer of over a second shows a progress bar on stderr when it
        is a terminal; ``progress=False`` hides it (default: the ``progress`` setting)."""
        target = as_system(system)
        path, data_config = self._copy_options(target, path, data_config)
        dest = Folder(path=path, system=target, data_config=data_config)
        if _same_place(self, dest):
            raise ValueError(f"{self.place().url()} is already there: give another path")
        copy(self.place(), dest.place(), progress)
        return dest

    def mv(
        self,
        system: Cluster | str,
        path: str | None = None,
        data_config: dict[str, Any] | None = None,
        progress: bool | None = None,
    ) -> Folder:
        """Move the folder: copy it (as ``to``, with its progress bar), check the copy has
        the same files and sizes, then delete the source; ``self`` then points at the new
        place and is returned."""
        dest = self.to(system, path, data_config, progress)
        trees.check_same(self.sizes(), dest.sizes(), dest.place().url())
        self.rm()
        self.system, self.path, self.data_config = dest.system, dest.path, dest.data_config
        self._instance = None
        return self

    def __repr__(self) -> str:
        return f"Folder({self.place().url()!r})"


def as_system(system: Cluster | str | dict[str, Any] | None) -> str | Cluster:
    """A storage scheme (``file``, ``s3``, ``gs``, ``azure``; ``"here"`` is ``file``) or a
    cluster (a ``Cluster``, a cluster's name such as ``"local"``, or its config)."""
    if system is None:
        return "file"
    if isinstance(system, str):
        scheme = _ALIASES.get(system, system)
        return scheme if scheme in SCHEMES else as_cluster(system)
    return as_cluster(system)


def as_path(system: str | Cluster, path: str | None, name: str | None = None) -> str:
    """The folder's path in its system's own form: absolute on local disk, ``bucket/prefix``
    in a bucket, and on a cluster as given (relative paths are from its home: ``~/x``)."""
    if isinstance(system, str) and system != "file":
        if not path:
            raise ValueError(f"a folder in {system} needs a path: path='bucket/prefix'")
        return path.removeprefix(f"{system}://").rstrip("/")
    if path is None:
        leaf = name.rsplit("/", 1)[-1] if name else secrets.token_hex(4)
        path = f"~/.rh/folders/{leaf}"
    if system == "file":
        return storage_for("file").normalize(path)
    path = path.rstrip("/") or path
    return path if path.startswith(("/", "~")) else f"~/{path}"


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the keys (at any depth) that look like credentials."""
    kept: dict[str, Any] = {}
    for key, value in options.items():
        if looks_like_credential(key):
            continue
        kept[key] = public_options(value) if isinstance(value, dict) else value
    return kept


def _same_place(a: Folder, b: Folder) -> bool:
    if isinstance(a.system, str) or isinstance(b.system, str):
        return a.system == b.system and a.path == b.path
    return same_cluster(a.system, b.system) and a.path == b.path


def _instance_of(cluster: Cluster) -> str | None:
    # Asked each time the folder is pickled: a restarted daemon has a new id.
    try:
        return str(ClusterFiles(cluster).call("instance") or "") or None
    except (RunhouseError, OSError):
        return None


def _as_bytes(name: str, value: bytes | str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"put() takes bytes or str for each file; {name!r} is {type(value).__name__}")


def folder(
    path: str | None = None,
    system: Cluster | str | None = None,
    name: str | None = None,
    data_config: dict[str, Any] | None = None,
) -> Folder:
    """A folder at ``path`` on ``system`` (default: local disk; ``"here"``, a cluster or its
    name, ``"s3"``, ``"gs"``, ``"azure"``), or the one saved as ``name`` when only a name
    is given. ``data_config``: storage options (an ``endpoint_url``, say)."""
    if name is not None and path is None and system is None and data_config is None:
        try:
            return Folder.from_name(name)
        except ResourceNotFoundError:
            pass
    return Folder(path=path, system=system, name=name, data_config=data_config)
