"""The storage interface: one storage system (local disk, a bucket service), its paths, and
the few operations every data resource is built from, over fsspec.

    >>> storage = storage_for("s3", {"endpoint_url": "http://127.0.0.1:9000"})
    >>> storage.write_bytes("bucket/a/b.txt", b"hi")     # atomic: never a half-written file
    >>> storage.ls("bucket/a")                             # ['bucket/a/b.txt']

A system is a small subclass (``runhouse/data/systems/``): it names its scheme, builds its
fsspec filesystem from ``options`` (a resource's ``data_config``) and the usual credential
sources, and may say how to rename and how to describe its library's errors. Everything
else is shared here, and ``tests/conformance/storage_suite.py`` holds every system to it.

Paths are the system's own: ``/abs/path`` on local disk, ``bucket/prefix`` in a bucket
(``s3://bucket/prefix`` is accepted and normalized). Clusters' workers import this module
too: it must never import client-side code.
"""

from __future__ import annotations

import os
import posixpath
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import IO, Any, ClassVar, cast

from runhouse.exceptions import StorageError

PARTIAL = ".rh-partial-"  # the mark of a temporary name: never a finished file or folder


class Storage(ABC):
    """A storage system where data resources keep their files."""

    scheme: ClassVar[str]  # "file", "s3", "gs", "azure": what a resource's ``system`` says

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self._fs: Any = None

    # -- what a system defines ---------------------------------------------------------

    @abstractmethod
    def _filesystem(self) -> Any:
        """The fsspec filesystem, from ``self.options`` and the usual credential sources."""

    def normalize(self, path: str) -> str:
        """The system's own form of ``path`` (``s3://b/k/`` -> ``b/k``)."""
        prefix = f"{self.scheme}://"
        path = path[len(prefix) :] if path.startswith(prefix) else path
        return path.rstrip("/") or path

    def describe(self, exc: BaseException, path: str) -> StorageError | None:
        """A clear error for a library error (missing credentials, say), or None to keep it."""
        return None

    # -- shared ------------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (made on first use)."""
        if self._fs is None:
            self._fs = self._filesystem()
        return self._fs

    def ls(self, path: str) -> list[str]:
        """The entries directly in folder ``path``, as full paths, sorted; temporary names
        of unfinished writes are left out."""
        path = self.normalize(path)
        with self.errors(path):
            entries = self.fs.ls(path, detail=False)
        return sorted(self.normalize(e) for e in entries if PARTIAL not in e)

    def exists(self, path: str) -> bool:
        """Whether a file or folder is at ``path``."""
        path = self.normalize(path)
        with self.errors(path):
            return bool(self.fs.exists(path))

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a folder (a prefix holding objects, in a bucket)."""
        path = self.normalize(path)
        with self.errors(path):
            return bool(self.fs.isdir(path))

    def mkdir(self, path: str) -> None:
        """Make folder ``path`` and its parents (in a bucket, where folders are prefixes,
        only the bucket is made if missing)."""
        path = self.normalize(path)
        with self.errors(path):
            self.fs.makedirs(path, exist_ok=True)

    def read_bytes(self, path: str) -> bytes:
        """The whole file at ``path``."""
        path = self.normalize(path)
        with self.errors(path):
            return bytes(self.fs.cat_file(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a file atomically: readers see the old file or the whole new one."""
        path = self.normalize(path)
        with self.errors(path), self.staged(path) as temporary:
            self.fs.pipe_file(temporary, data)

    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        """A file object (``rb``, ``wb``, ``r``, ``w``); a written file appears whole when it
        is closed, and not at all if its ``with`` block raises."""
        path = self.normalize(path)
        with self.errors(path):
            if "w" not in mode:  # reading; appending and "x" act on the file itself
                return self.fs.open(path, mode)
            return self._open_writer(path, mode)

    def _open_writer(self, path: str, mode: str) -> IO[Any]:
        # Written under a temporary sibling name, renamed over ``path`` when closed.
        temporary = _temporary(path)
        file = self.fs.open(temporary, mode)

        def abandon() -> None:
            file.close()
            if self.fs.exists(temporary):
                self.fs.rm(temporary)

        finish = partial(self.rename, temporary, path)
        guard = WriteGuard(file, finish, abandon, partial(self.errors, path))
        return cast(IO[Any], guard)

    def rm(self, path: str, recursive: bool = False) -> None:
        """Remove a file, or a folder with ``recursive``; ``FileNotFoundError`` if absent."""
        path = self.normalize(path)
        with self.errors(path):
            if not self.fs.exists(path):
                raise FileNotFoundError(f"{self.url(path)} does not exist")
            self.fs.rm(path, recursive=recursive)

    def files(self, path: str) -> list[str]:
        """Every file under folder ``path`` (recursively), relative to it, sorted."""
        root = self.normalize(path)
        with self.errors(root):
            found = self.fs.find(root)
        rel = [posixpath.relpath(self.normalize(f), root) for f in found]
        return sorted(r for r in rel if PARTIAL not in r)

    def upload(self, local_dir: str, path: str) -> None:
        """Copy local folder ``local_dir``'s files into folder ``path``."""
        path = self.normalize(path)
        with self.errors(path):
            for rel in _local_files(local_dir):
                self._put_file(os.path.join(local_dir, rel), self.join(path, rel))

    def download(self, path: str, local_dir: str) -> None:
        """Copy folder ``path``'s files into local folder ``local_dir``."""
        path = self.normalize(path)
        with self.errors(path):
            for rel in self.files(path):
                target = os.path.join(local_dir, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.fs.get_file(self.join(path, rel), target)

    def copy_within(
        self, sources: list[str], targets: list[str], sizes: list[int] | None = None
    ) -> None:
        """Copy files inside this system, many at once (in a bucket, the service's own copy;
        ``sizes``, when known, spare a system asking for them)."""
        self.fs.copy(sources, targets)

    def rename(self, source: str, dest: str) -> None:
        """Move ``source`` to ``dest``, replacing it (a copy then a delete in a bucket)."""
        with self.errors(source):
            if self.fs.exists(dest):
                self.fs.rm(dest, recursive=True)
            self.fs.mv(source, dest, recursive=True)

    def join(self, *parts: str) -> str:
        """Paths joined with ``/``; a part that escapes its folder (``..``, ``/x``) is refused."""
        for part in parts[1:]:
            if part.startswith("/") or ".." in part.replace("\\", "/").split("/"):
                raise StorageError(
                    self.scheme, part, "a name inside a folder may not start with / or hold '..'"
                )
        return posixpath.join(*parts)

    def url(self, path: str) -> str:
        """``scheme://path``."""
        return f"{self.scheme}://{self.normalize(path)}"

    @contextmanager
    def staged(self, path: str) -> Iterator[str]:
        """A temporary sibling of ``path`` to write to, renamed to ``path`` on success and
        removed on failure: a destination that looks complete is complete."""
        temporary = _temporary(path)
        try:
            yield temporary
        except BaseException:
            try:
                if self.fs.exists(temporary):
                    self.fs.rm(temporary, recursive=True)
            finally:
                raise
        self.rename(temporary, path)

    def _put_file(self, local: str, path: str) -> None:
        with self.staged(path) as temporary:
            self.fs.put_file(local, temporary)

    @contextmanager
    def errors(self, path: str) -> Iterator[None]:
        """Inside, a library's error becomes one naming the system and ``path`` where the
        system knows better words for it; built-in errors people expect pass through."""
        # The system is asked even about those: a missing bucket arrives as a
        # FileNotFoundError and wrong credentials as a PermissionError.
        try:
            yield
        except StorageError:
            raise
        except ImportError as exc:
            from runhouse.data.registry import install_hint

            reason = f"its library is not installed ({exc.name}): {install_hint(self.scheme)}"
            raise StorageError(self.scheme, path, reason) from exc
        except Exception as exc:
            described = self.describe(exc, path)
            if described is not None:
                raise described from exc
            if isinstance(exc, PermissionError):
                raise StorageError(
                    self.scheme,
                    path,
                    f"permission denied ({exc}); pick a place this user may write, or change "
                    "the path's owner or mode",
                ) from exc
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scheme!r})"


class WriteGuard:
    """A file being written: closing it (or a ``with`` block that ends well) finishes the
    file; a ``with`` block that raises abandons it, so no partial file appears."""

    def __init__(
        self,
        file: Any,
        finish: Callable[[], None],
        abandon: Callable[[], None],
        errors: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._file = file
        self._finish = finish
        self._abandon = abandon
        self._errors = errors  # the storage's words for library errors: a bucket's upload
        self._done = False  # happens at close, outside the call that opened the file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> WriteGuard:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    @property
    def closed(self) -> bool:
        """Whether the file is finished or abandoned."""
        return self._done

    def close(self) -> None:
        """Finish the file: it appears whole at its path."""
        if not self._done:
            self._done = True
            with self._errors():
                self._file.close()
                self._finish()

    def abandon(self) -> None:
        """Drop what was written: nothing appears at the path (an old file stays)."""
        if not self._done:
            self._done = True
            with self._errors():
                self._abandon()


def _temporary(path: str) -> str:
    return f"{path.rstrip('/')}{PARTIAL}{secrets.token_hex(4)}"


def _local_files(root: str) -> list[str]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            found.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(found)


def storage_for(scheme: str, options: dict[str, Any] | None = None) -> Storage:
    """The storage system named ``scheme`` (``file``, ``s3``, ``gs``, ``azure``)."""
    from runhouse.data.registry import system_class  # the registry lists this module's kin

    return system_class(scheme)(options)
