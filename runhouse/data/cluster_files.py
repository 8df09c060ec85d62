"""A cluster's disk seen from a client: the storage interface's operations, each run by the
cluster's base-env worker (``runhouse/data/remote_ops.py``) through its daemon.

    >>> disk = ClusterFiles(cluster)
    >>> disk.ls("~/data"); disk.read_bytes("~/data/a.txt")
    >>> with disk.open("~/data/b.txt", "w") as f: f.write("hi")   # appears whole on close

Paths are the cluster's: ``~`` is the home of the user the daemon runs as. Errors name the
cluster and the path. Client side only (workers use ``remote_ops`` directly).
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from runhouse.client.sent import run_keys
from runhouse.data import remote_ops, trees
from runhouse.exceptions import StorageError

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster


class ClusterFiles:
    """Files on a cluster's disk, through its daemon."""

    scheme = "cluster"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    @property
    def system(self) -> str:
        """How errors name this system: ``cluster <name>``."""
        return f"cluster {self.cluster.rns_address or self.cluster}"

    def call(self, op: str, *args: Any) -> Any:
        """Run ``remote_ops.<op>(*args)`` on the cluster; errors name the cluster."""
        run_key = run_keys.new("rh-data")  # the daemon's own prefix is not a run key's
        with self._named_errors():
            return self.cluster.request_call(
                remote_ops.KEY, op, args, stream_logs=False, run_key=run_key
            )

    def stream(self, op: str, *args: Any) -> Iterator[Any]:
        """The items of the generator ``remote_ops.<op>(*args)`` as the cluster sends them;
        errors (raised as they arrive) name the cluster."""
        items = self.call(op, *args)
        with self._named_errors():
            yield from items

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        try:
            yield
        except StorageError as exc:
            raise self.error(exc.path, exc.reason) from exc
        except FileNotFoundError as exc:
            if exc.filename:
                where = self.url(str(exc.filename))
                raise FileNotFoundError(f"{where} does not exist; check the path") from exc
            raise FileNotFoundError(f"{self.system}: {exc}") from exc
        except FileExistsError as exc:
            raise FileExistsError(f"{self.system}: {exc}") from exc

    def error(self, path: str, reason: str) -> StorageError:
        """A ``StorageError`` whose system is this cluster, said as ``<cluster>:<path>``."""
        error = StorageError(self.system, path, reason)
        error.args = (f"{self.url(path)}: {reason}",)
        return error

    def normalize(self, path: str) -> str:
        """A cluster path as given (``~`` and relative paths are resolved there)."""
        return path.rstrip("/") or path

    def expand(self, path: str) -> str:
        """The absolute form of ``path`` on the cluster."""
        return str(self.call("expand", path))

    def url(self, path: str) -> str:
        """``<cluster>:<path>``."""
        return f"{self.cluster.rns_address or self.cluster}:{path}"

    def join(self, *parts: str) -> str:
        """Paths joined with ``/``; a part that escapes its folder is refused."""
        for part in parts[1:]:
            if part.startswith("/") or ".." in part.replace("\\", "/").split("/"):
                raise self.error(
                    f"{parts[0]} + {part}",
                    "a name inside a folder may not start with / or hold '..'",
                )
        return posixpath.join(*parts)

    def ls(self, path: str) -> list[str]:
        """The entries directly in folder ``path``, as absolute paths on the cluster."""
        return list(self.call("ls", path))

    def exists(self, path: str) -> bool:
        """Whether anything is at ``path``."""
        return bool(self.call("exists", path))

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a folder."""
        return bool(self.call("isdir", path))

    def mkdir(self, path: str) -> None:
        """Make folder ``path`` and its parents."""
        self.call("mkdir", path)

    def read_bytes(self, path: str) -> bytes:
        """The whole file at ``path``."""
        return bytes(self.call("read", path))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write file ``path`` atomically."""
        self.call("write", path, data)

    def put_many(self, folder: str, contents: dict[str, bytes], overwrite: bool) -> None:
        """Write several files into ``folder`` in one call (see ``trees.put_many``)."""
        for name in contents:
            self.join(folder, name)
        self.call("put", folder, contents, overwrite)

    def rm(self, path: str, recursive: bool = False) -> None:
        """Remove a file, or a folder with ``recursive``."""
        self.call("rm", path, recursive)

    def files(self, path: str) -> list[str]:
        """Every file under folder ``path``, relative to it."""
        return list(self.call("files", path))

    def sizes(self, path: str) -> dict[str, int]:
        """Every file under folder ``path`` and its size."""
        return dict(self.call("sizes", path))

    def rename(self, source: str, dest: str) -> None:
        """Move ``source`` to ``dest`` on the cluster, replacing it."""
        self.call("rename", source, dest)

    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        """A file object on the cluster: read in parts, or written to a temporary file
        renamed into place on a clean close (an error inside ``with`` discards it)."""
        if mode not in ("rb", "r", "wb", "w"):
            raise ValueError(f"mode must be 'rb', 'r', 'wb' or 'w', not {mode!r}")
        if mode.startswith("r"):
            total = int(self.call("size", path)) if self.exists(path) else -1
            if total < 0:
                raise FileNotFoundError(f"{self.system}: {path} does not exist")
            reader = io.BufferedReader(_Reader(self, path, total), buffer_size=trees.CHUNK)
            return reader if mode == "rb" else io.TextIOWrapper(reader, encoding="utf-8")
        writer = _Writer(self, path)
        buffered = _DiscardOnError(writer, buffer_size=trees.CHUNK)
        if mode == "wb":
            return buffered
        return _TextDiscardOnError(buffered, encoding="utf-8")


class _Reader(io.RawIOBase):
    def __init__(self, files: ClusterFiles, path: str, total: int) -> None:
        self._files, self._path, self._total, self._pos = files, path, total, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), max(0, self._total - self._pos))
        if want == 0:
            return 0
        data = self._files.call("read_range", self._path, self._pos, want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class _Writer(io.RawIOBase):
    def __init__(self, files: ClusterFiles, path: str) -> None:
        self._files, self._path = files, path
        self._temp = trees.partial_path(path, f"open-{id(self)}")
        self._written = 0
        self._discard = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._written = int(self._files.call("write_at", self._temp, self._written, bytes(data)))
        return len(data)

    def discard(self) -> None:
        self._discard = True

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._discard:
            if self._written:
                self._files.call("rm", self._temp)
            return
        if not self._written:  # an empty file: nothing was sent yet
            self._files.call("write_at", self._temp, 0, b"")
        self._files.rename(self._temp, self._path)


class _DiscardOnError(io.BufferedWriter):
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.raw.discard()  # type: ignore[attr-defined]
        self.close()


class _TextDiscardOnError(io.TextIOWrapper):
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.buffer.raw.discard()  # type: ignore[attr-defined]
        self.close()
