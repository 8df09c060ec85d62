"""What the bucket systems (``s3``, ``gs``, ``azure``) share: paths are ``bucket/prefix``,
folders are prefixes, an object appears only when its upload completes, many objects move
at once, and a rename is a server-side copy then a delete.

A system names its URL prefixes, says where credentials come from, builds its fsspec
filesystem and sorts its library's errors into the kinds below (``classify``).
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import IO, Any, ClassVar, Literal, cast

from runhouse.data.storage import PARTIAL, Storage, WriteGuard, _local_files
from runhouse.exceptions import StorageError

Kind = Literal["bucket", "credentials", "denied", "unreachable"]

# Filesystems made recently, newest last: building a client costs 0.1-0.2 s (S3's most),
# against about 10 ms for a request, and a resource makes a storage per operation.
_REUSED: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_REUSED_LOCK = threading.Lock()
_KEEP = 8


class MissingCredentials(Exception):
    """No credential source is configured at all (said before the library goes guessing)."""


class BucketStorage(Storage):
    """A bucket service: objects under ``bucket/key`` names."""

    prefixes: ClassVar[tuple[str, ...]]  # URL forms that normalize accepts ("s3://", ...)
    credentials_hint: ClassVar[str]  # where credentials come from, for error messages
    endpoint_hint: ClassVar[str]  # what points the client at its service
    make_bucket_hint: ClassVar[str]  # how to make a bucket ({bucket} is filled in)
    variables: ClassVar[tuple[str, ...]]  # prefixes of the environment its library reads

    def classify(self, exc: BaseException) -> Kind | None:
        """Which kind of fault a library error is, or None when it is none of them."""
        return None

    def reuse(self, make: Callable[[], Any]) -> Any:
        """The filesystem ``make`` builds, shared by storages with the same options and
        environment in this process (a changed variable, or HOME, makes a new one)."""
        seen = sorted(
            f"{k}={v}" for k, v in os.environ.items() if k.startswith(self.variables) or k == "HOME"
        )
        options = json.dumps(self.options, sort_keys=True, default=repr)
        key = (self.scheme, str(os.getpid()), options, *seen)  # a forked child makes its own
        with _REUSED_LOCK:
            fs = _REUSED.pop(key, None)
            _REUSED[key] = fs = make() if fs is None else fs
            while len(_REUSED) > _KEEP:
                _REUSED.popitem(last=False)
        return fs

    def normalize(self, path: str) -> str:
        """``bucket/prefix`` (any of the system's URL prefixes and outer slashes removed)."""
        for prefix in self.prefixes:
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        return path.strip("/")

    # An object is written whole by one PUT (or a multipart or block upload that completes
    # in one step): readers see the old object or the new one. So files go straight to
    # their names, without the temporary name and server-side copy a rename would cost.
    # Folders still go through staged(): many objects do not appear at once.

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write an object in one request (atomic by the service)."""
        path = self.normalize(path)
        with self.errors(path):
            self.fs.pipe_file(path, data)

    def _put_file(self, local: str, path: str) -> None:
        self.fs.put_file(local, path)

    def _open_writer(self, path: str, mode: str) -> IO[Any]:
        file = self.fs.open(path, mode)
        abandon = partial(self._abandon, file)
        guard = WriteGuard(file, lambda: None, abandon, partial(self.errors, path))
        return cast(IO[Any], guard)

    def _abandon(self, file: Any) -> None:
        # Closing would complete the upload with what was written so far: discard instead
        # (aborts a multipart upload already begun) and mark the file closed.
        raw = file.detach() if isinstance(file, io.TextIOWrapper) else file
        raw.discard()
        raw.closed = True

    def upload(self, local_dir: str, path: str) -> None:
        """Copy local folder ``local_dir``'s files into folder ``path``, many at once (fsspec's
        batched put; a large file goes up in parallel parts)."""
        path = self.normalize(path)
        names = _local_files(local_dir)
        if names:
            with self.errors(path):
                locals_ = [os.path.join(local_dir, name) for name in names]
                self.fs.put(locals_, [self.join(path, _posix(name)) for name in names])

    def download(self, path: str, local_dir: str) -> None:
        """Copy folder ``path``'s files into local folder ``local_dir``, many at once."""
        path = self.normalize(path)
        names = self.files(path)
        if names:
            with self.errors(path):
                targets = [os.path.join(local_dir, *name.split("/")) for name in names]
                self.fs.get([self.join(path, name) for name in names], targets)

    def rename(self, source: str, dest: str) -> None:
        """Copy ``source`` to ``dest`` inside the service, then delete ``source``; a folder
        at ``dest`` ends up holding exactly ``source``'s files."""
        source, dest = self.normalize(source), self.normalize(dest)
        with self.errors(source):
            if self.fs.isdir(source):
                found = self.fs.find(source, detail=True)
                sizes = {
                    posixpath.relpath(self.normalize(path), source): int(info.get("size") or 0)
                    for path, info in found.items()
                }
                names = sorted(name for name in sizes if PARTIAL not in name)
                if self.fs.isdir(dest):
                    stale = sorted(set(self.files(dest)) - set(names))
                    if stale:
                        self.fs.rm([self.join(dest, name) for name in stale])
                elif self.fs.exists(dest):
                    self.fs.rm(dest)
                sources = [self.join(source, name) for name in names]
                targets = [self.join(dest, name) for name in names]
                self.copy_within(sources, targets, [sizes[name] for name in names])
                self.fs.rm(source, recursive=True)
            else:
                if self.fs.isdir(dest):
                    self.fs.rm(dest, recursive=True)
                self.fs.cp_file(source, dest)
                self.fs.rm(source)

    def describe(self, exc: BaseException, path: str) -> StorageError | None:
        """A missing bucket, missing or wrong credentials, refused access or an unreachable
        service, said with what to do; None for anything else."""
        if isinstance(exc, MissingCredentials):
            kind: Kind | None = "credentials"
        else:
            kind = self.classify(exc)
        if kind is None and isinstance(exc, FileNotFoundError) and self._bucket_missing(path):
            kind = "bucket"
        if kind is None:
            return None
        detail = _first_line(exc)
        bucket = path.split("/", 1)[0]
        reasons = {
            "bucket": f"bucket {bucket!r} does not exist: create it "
            f"({self.make_bucket_hint.format(bucket=bucket)}) or check the name",
            "credentials": f"no valid credentials{detail}: {self.credentials_hint}",
            "denied": f"access denied{detail}: use credentials allowed to use bucket "
            f"{bucket!r} ({self.credentials_hint})",
            "unreachable": f"cannot reach the service{detail}: check {self.endpoint_hint} "
            "and that the service is up",
        }
        return StorageError(self.scheme, path, reasons[kind])

    def _bucket_missing(self, path: str) -> bool:
        try:
            return not self.fs.exists(path.split("/", 1)[0])
        except Exception:  # cannot tell (no access to the bucket, say): not "missing"
            return False


def _first_line(exc: BaseException) -> str:
    # The library's own words, short; none of them carry credentials.
    text = str(exc).strip().splitlines()
    return f" ({text[0][:200]})" if text else ""


def _posix(name: str) -> str:
    return name.replace(os.sep, "/")
