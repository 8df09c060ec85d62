"""``Blob``: an object in memory, or kept in a cluster's object store; ``File``: an object
persisted as one file on any system.

>>> b = rh.blob(data={"a": 1}).to(c)        # under a key in c's object store (c.keys())
>>> b.fetch()
{'a': 1}
>>> f = rh.file(data=model, path="bucket/model.pkl", system="s3").write()
>>> f.fetch(); f.to(c, path="~/model.pkl"); f.rm()

A file holds a pickle of its data (cloudpickle), or the raw bytes when the data is
``bytes``; ``serializer`` says which, and is kept in the config.
"""

from __future__ import annotations

import secrets
from typing import Any

from runhouse.data import transfers
from runhouse.resources.cluster import Cluster, as_cluster
from runhouse.resources.folder import SCHEMES, OnASystem, as_path, as_system
from runhouse.resources.resource import Resource
from runhouse.wire.serialization import dumps, loads

SERIALIZERS = ("pickle", "bytes")


class Blob(Resource):
    """An object: in memory until sent, then under a key in a cluster's object store."""

    resource_type = "blob"

    def __init__(
        self,
        data: Any = None,
        name: str | None = None,
        system: Cluster | str | dict[str, Any] | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.data = data
        self.system = as_cluster(system) if system is not None else None
        self.key = key

    def config(self) -> dict[str, Any]:
        """The blob's config: the cluster and key it is kept under (never its data)."""
        return {**super().config(), "system": self.ref(self.system), "key": self.key}

    def to(self, system: Cluster | str, key: str | None = None) -> Blob:
        """Keep the object in ``system``'s object store under ``key`` (default: the blob's
        name, or a new key) and return the blob there; ``"here"``: fetch it into memory."""
        if system == "here":
            return Blob(data=self.fetch(), name=self.rns_address)
        cluster = as_cluster(system)
        key = key or self.key or (self.name or f"blob-{secrets.token_hex(4)}")
        cluster.put(key, self.fetch())
        return Blob(name=self.rns_address, system=cluster, key=key)

    def fetch(self) -> Any:
        """The object, here."""
        if self.system is None:
            return self.data
        assert self.key is not None
        return self.system.get(self.key, default=KeyError)

    def exists_in_system(self) -> bool:
        """Whether the object is in its cluster's store (or in memory here)."""
        if self.system is None:
            return self.data is not None
        return self.key in self.system.keys()

    def rm(self) -> None:
        """Delete the object from its cluster's store (or drop it from memory)."""
        if self.system is None:
            self.data = None
        else:
            assert self.key is not None
            self.system.delete(self.key)


class File(OnASystem):
    """An object persisted as one file (a pickle, or raw bytes) on a storage system or a
    cluster's disk. The config keeps no credentials (see ``Folder``)."""

    resource_type = "file"

    def __init__(
        self,
        data: Any = None,
        path: str | None = None,
        system: Cluster | str | dict[str, Any] | None = None,
        name: str | None = None,
        data_config: dict[str, Any] | None = None,
        serializer: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if serializer is not None and serializer not in SERIALIZERS:
            raise ValueError(f"serializer must be one of {SERIALIZERS}, not {serializer!r}")
        self.data = data
        self.system: str | Cluster = as_system(system)
        self.data_config = dict(data_config or {})
        if path is None and self.system not in SCHEMES[1:]:
            leaf = name.rsplit("/", 1)[-1] if name else f"file-{secrets.token_hex(4)}"
            path = f"~/.rh/files/{leaf}"
        self.path = as_path(self.system, path, name)
        self.serializer = serializer

    def config(self) -> dict[str, Any]:
        """The file's config: system, path, serializer (never its data or credentials)."""
        return {**super().config(), "serializer": self.serializer}

    def write(self) -> File:
        """Write the data to the file (atomically: a reader never sees half of it)."""
        if isinstance(self.data, (bytes, bytearray, memoryview)):
            self.serializer, payload = "bytes", bytes(self.data)
        else:
            self.serializer = "pickle"
            payload = dumps(self.data, f"the data of {self.place().url()}")
        self.place().files().write_bytes(self.path, payload)
        return self

    def fetch(self) -> Any:
        """The object read back from the file."""
        payload = self.place().files().read_bytes(self.path)
        if self.serializer == "bytes":
            return payload
        return loads(payload, f"the file {self.place().url()}")

    def exists_in_system(self) -> bool:
        """Whether the file exists on its system."""
        return self.place().files().exists(self.path)

    def rm(self) -> None:
        """Delete the file."""
        self.place().files().rm(self.path)

    def to(
        self,
        system: Cluster | str,
        path: str | None = None,
        data_config: dict[str, Any] | None = None,
        progress: bool | None = None,
    ) -> File:
        """A copy of the file on ``system`` at ``path`` (default: its name in the cluster's
        home, or the current folder here; a bucket needs ``"bucket/key"``), by the shortest
        path (a cluster <-> bucket copy is made by the cluster itself), with a progress bar
        on a terminal (``progress=False``: none)."""
        target = as_system(system)
        path, data_config = self._copy_options(target, path, data_config)
        dest = File(path=path, system=target, data_config=data_config, serializer=self.serializer)
        transfers.copy_file(self.place(), dest.place(), progress)
        return dest


def blob(data: Any = None, name: str | None = None) -> Blob:
    """An object in memory (``.to(cluster)`` keeps it in that cluster's object store), or
    the blob saved as ``name`` when only a name is given."""
    if data is None and name is not None:
        return Blob.from_name(name)
    return Blob(data=data, name=name)


def file(
    data: Any = None,
    path: str | None = None,
    system: Cluster | str | None = None,
    name: str | None = None,
    data_config: dict[str, Any] | None = None,
) -> File:
    """An object persisted as a file at ``path`` on ``system`` (as for ``rh.folder``):
    ``write()`` it, ``fetch()`` it back; or the file saved as ``name`` when only a name is
    given."""
    if data is None and path is None and system is None and name is not None:
        return File.from_name(name)
    return File(data=data, path=path, system=system, name=name, data_config=data_config)
