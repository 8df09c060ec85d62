"""Folders as trees of files over the storage interface: their sizes, several files put at
once, a resumable copy between two systems, and a deterministic tar stream.

    >>> sizes(storage, "bucket/data")                    # {'a.txt': 3, 'sub/b.bin': 10}
    >>> copy_tree(local, "/data", s3, "bucket/data")     # via bucket/data.rh-partial-<h>

A copy goes into a temporary sibling of the destination whose name is the same on every
try (a hash of source and destination), then is renamed: a destination that looks complete
is complete, and a re-run after a cut keeps the files that arrived whole. Both sides use
this module (clusters' workers copy cluster <-> bucket themselves): it imports nothing of
the client.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from runhouse.data.progress import Bar, fsspec_callback
from runhouse.data.storage import PARTIAL, Storage
from runhouse.exceptions import StorageError

CHUNK = 16 * 1024 * 1024  # bytes read or sent at a time
BATCH = 256  # files handed to the library at once: a cut copy keeps the batches done
_BLOCK = tarfile.BLOCKSIZE


def partial_path(dest: str, source_id: str) -> str:
    """The temporary sibling a copy of ``source_id`` to ``dest`` is written to: the same on
    every try, so a re-run resumes it; hidden from ``ls`` and ``files``."""
    digest = hashlib.sha256(f"{source_id}\0{dest}".encode()).hexdigest()[:16]
    return f"{dest.rstrip('/')}{PARTIAL}{digest}"


def sizes(storage: Storage, path: str) -> dict[str, int]:
    """Every file under folder ``path`` (relative to it) and its size in bytes; empty if
    there is no such folder."""
    root = storage.normalize(path)
    with storage.errors(root):
        if not storage.fs.exists(root):
            return {}
        found = storage.fs.find(root, detail=True)
    result = {}
    for name, info in found.items():
        if info.get("type", "file") != "file":
            continue
        rel = posixpath.relpath(storage.normalize(name), root)
        if rel != "." and PARTIAL not in rel:
            result[rel] = int(info.get("size") or 0)
    return dict(sorted(result.items()))


def put_many(storage: Storage, folder: str, contents: dict[str, bytes], overwrite: bool) -> None:
    """Write each ``name: bytes`` into ``folder`` (each file atomically); every name is
    checked first, so a refused put writes nothing."""
    targets = {name: storage.join(storage.normalize(folder), name) for name in contents}
    if not overwrite:
        taken = sorted(name for name, target in targets.items() if storage.exists(target))
        if taken:
            raise FileExistsError(
                f"{storage.url(folder)} already holds {taken}; pass overwrite=True to replace them"
            )
    for name, data in contents.items():
        storage.write_bytes(targets[name], data)


def copy_tree(
    src: Storage, src_path: str, dst: Storage, dst_path: str, progress: Bar | None = None
) -> dict[str, int]:
    """Copy folder ``src_path`` of ``src`` to ``dst_path`` of ``dst`` (replacing it), through
    a temporary sibling renamed once every file is there with its size; a re-run after a
    cut copies only what is missing. Returns the files copied and their sizes; ``progress``
    counts the bytes."""
    src_path, dst_path = src.normalize(src_path), dst.normalize(dst_path)
    wanted = sizes(src, src_path)
    if not wanted and not src.isdir(src_path):
        raise FileNotFoundError(
            f"{src.url(src_path)} is not a folder (nothing is there); check the path"
        )
    temp = partial_path(dst_path, f"{src.url(src_path)}|{sorted(wanted.items())}")
    have = sizes(dst, temp)
    missing = [rel for rel, size in wanted.items() if have.get(rel) != size]
    if progress is not None:
        total = sum(wanted.values())
        progress.begin(total, total - sum(wanted[rel] for rel in missing))
    for start in range(0, len(missing), BATCH):
        part = missing[start : start + BATCH]
        sources = [src.join(src_path, rel) for rel in part]
        targets = [dst.join(temp, rel) for rel in part]
        copy_files(src, sources, dst, targets, progress, [wanted[rel] for rel in part])
    check_same(wanted, sizes(dst, temp), dst.url(temp))
    if wanted:
        dst.rename(temp, dst_path)
    else:  # an empty folder: a bucket has no empty prefix to rename
        dst.mkdir(dst_path)
    return wanted


def copy_files(
    src: Storage,
    sources: list[str],
    dst: Storage,
    targets: list[str],
    progress: Bar | None = None,
    file_sizes: list[int] | None = None,
) -> None:
    """Copy files between systems: to or from this machine's disk many at once (the
    library moves them in parallel), inside one bucket service by its server-side copy,
    between two services one by one through here. ``progress`` counts the bytes (the
    sources' ``file_sizes``, when known, count for files the library says nothing of)."""
    if not sources:
        return
    known = dict(zip(sources, file_sizes or [], strict=False))
    callback = fsspec_callback(progress, known) if progress is not None else None
    extra = {"callback": callback} if callback is not None else {}
    with src.errors(sources[0]), dst.errors(targets[0]):
        if src.scheme == "file":
            dst.fs.put(sources, targets, **extra)
        elif dst.scheme == "file":
            for target in targets:
                os.makedirs(os.path.dirname(target), exist_ok=True)
            src.fs.get(sources, targets, **extra)
        elif server_side(src, dst):
            dst.copy_within(sources, targets, file_sizes)
            if progress is not None:
                progress.advance(sum(known.values()))
        else:
            for source, target in zip(sources, targets, strict=True):
                with src.fs.open(source, "rb") as reader, dst.fs.open(target, "wb") as writer:
                    while piece := reader.read(CHUNK):
                        writer.write(piece)
                        if progress is not None:
                            progress.advance(len(piece))


def server_side(src: Storage, dst: Storage) -> bool:
    """Whether a copy from ``src`` to ``dst`` can be the service's own (the same service,
    reached with the same options)."""
    return src.scheme == dst.scheme != "file" and src.options == dst.options


def copy_file(
    src: Storage, src_file: str, dst: Storage, dst_file: str, progress: Bar | None = None
) -> None:
    """Copy one file between systems (``progress`` counts its bytes)."""
    copy_files(src, [src_file], dst, [dst_file], progress)


def check_same(wanted: dict[str, int], found: dict[str, int], where: str) -> None:
    """Raise unless ``found`` lists the same files with the same sizes as ``wanted``."""
    if wanted == found:
        return
    missing = sorted(set(wanted) - set(found))
    different = sorted(k for k in wanted if k in found and found[k] != wanted[k])
    extra = sorted(set(found) - set(wanted))
    raise StorageError(
        "",
        where,
        f"the copy is not complete (missing {missing[:5]}, sizes differ {different[:5]}, "
        f"unexpected {extra[:5]}); nothing was renamed into place: run the transfer again",
    )


# -- a deterministic tar stream (for folders sent through a daemon's HTTP) ----------------


def manifest(root: str) -> list[tuple[str, int, int, int]]:
    """The files of local folder ``root``: (relative path, size, mtime in s, mode), sorted;
    the tar of the same manifest is the same bytes."""
    entries = []
    for folder, _, names in os.walk(root):
        for name in names:
            full = os.path.join(folder, name)
            if os.path.islink(full) and not os.path.exists(full):
                continue  # a dangling link has nothing to send
            st = os.stat(full)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if PARTIAL not in rel:
                entries.append((rel, st.st_size, int(st.st_mtime), st.st_mode & 0o7777))
    return sorted(entries)


def _header(rel: str, size: int, mtime: int, mode: int) -> bytes:
    info = tarfile.TarInfo(rel)
    info.size, info.mtime, info.mode = size, mtime, mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_size(entries: list[tuple[str, int, int, int]]) -> int:
    """The size of the tar ``tar_stream`` makes of ``entries``."""
    total = 2 * _BLOCK  # the end-of-archive blocks
    for rel, size, mtime, mode in entries:
        total += len(_header(rel, size, mtime, mode)) + -(-size // _BLOCK) * _BLOCK
    return total


def tar_stream(root: str, entries: list[tuple[str, int, int, int]]) -> Iterator[bytes]:
    """The tar of ``entries`` of ``root``, piece by piece (never a whole file in memory)."""
    for rel, size, mtime, mode in entries:
        yield _header(rel, size, mtime, mode)
        sent = 0
        with open(os.path.join(root, rel), "rb") as f:
            while sent < size:
                piece = f.read(min(CHUNK, size - sent))
                if not piece:
                    raise StorageError(
                        "file", os.path.join(root, rel), "the file shrank while it was sent"
                    )
                sent += len(piece)
                yield piece
        if size % _BLOCK:
            yield b"\0" * (_BLOCK - size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)


def write_tar(root: str, target: BinaryIO) -> str:
    """Write the tar of local folder ``root`` to ``target``; its sha256."""
    digest = hashlib.sha256()
    for piece in tar_stream(root, manifest(root)):
        digest.update(piece)
        target.write(piece)
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    """The sha256 of a local file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def unpack_tar(tar_path: str, dest: str) -> None:
    """Extract a tar of regular files into local folder ``dest`` (mtimes and modes kept);
    a member that is not a plain file inside ``dest`` is refused."""
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(tar_path, "r:") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or member.name.startswith("/") or ".." in parts:
                raise StorageError("file", tar_path, f"refusing tar member {member.name!r}")
            target = os.path.join(dest, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            reader = tar.extractfile(member)
            assert reader is not None  # a regular file always has contents
            with reader, open(target, "wb") as out:
                shutil.copyfileobj(reader, out, CHUNK)
            os.chmod(target, member.mode)
            os.utime(target, (member.mtime, member.mtime))
