"""What a cluster's worker does for a folder or file on the cluster: the daemon answers
``POST /_rh/data/{op}`` by calling ``OPS.<op>`` in the base env's worker.

    >>> cluster.request_call("_rh/data", "ls", ("~/data",))     # from the client

Every operation takes plain arguments (paths on the cluster's own disk, where ``~`` is the
daemon user's home; storage systems as ``{"system", "path", "options"}``) and returns plain
values. Workers import this module: it imports only ``runhouse.data`` and
``runhouse.exceptions``.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

from runhouse.data import progress, tables, trees
from runhouse.data.storage import Storage, storage_for
from runhouse.exceptions import StorageError
from runhouse.wire import home

KEY = "_rh/data"  # the key the worker answers these calls under (no user key can be it)
REPORT_EVERY = 0.25  # seconds between two reports of a copy's progress


def _disk() -> Storage:
    return storage_for("file")


def instance() -> str | None:
    """The instance id of the daemon this worker belongs to."""
    return home.instance()


def expand(path: str) -> str:
    """The absolute form of ``path`` on this machine (``~`` is this user's home)."""
    return _disk().normalize(path)


def ls(path: str) -> list[str]:
    """The entries directly in folder ``path``, as absolute paths."""
    return _disk().ls(path)


def exists(path: str) -> bool:
    """Whether anything is at ``path``."""
    return _disk().exists(path)


def isdir(path: str) -> bool:
    """Whether ``path`` is a folder."""
    return _disk().isdir(path)


def mkdir(path: str) -> None:
    """Make folder ``path`` and its parents."""
    _disk().mkdir(path)


def read(path: str) -> bytes:
    """The whole file at ``path``."""
    return _disk().read_bytes(path)


def read_range(path: str, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of file ``path`` from ``offset`` (fewer at its end)."""
    disk = _disk()
    path = disk.normalize(path)
    with disk.errors(path), open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def write(path: str, data: bytes) -> None:
    """Write file ``path`` atomically."""
    _disk().write_bytes(path, data)


def write_private(path: str, data: bytes, mode: int = 0o600) -> str:
    """Write file ``path`` atomically with permissions ``mode`` (it has them from its
    creation: never readable by others meanwhile); folders made for it are 700. Returns the
    absolute path. For secrets: their bytes travel in the call's body, never in a command."""
    path = expand(path)
    folder = os.path.dirname(path)
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for made in reversed(missing):
        os.makedirs(made, mode=0o700, exist_ok=True)
    fd, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path)
    )
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def set_environ(variables: dict[str, str]) -> list[str]:
    """Set environment variables in this worker (and the processes it starts); returns their
    names. The daemon sends an env's secrets so, holding them in memory only."""
    os.environ.update(variables)
    return sorted(variables)


def put(path: str, contents: dict[str, bytes], overwrite: bool) -> None:
    """Write several files into folder ``path`` (see ``trees.put_many``)."""
    trees.put_many(_disk(), path, contents, overwrite)


def rm(path: str, recursive: bool = False) -> None:
    """Remove a file, or a folder with ``recursive``."""
    _disk().rm(path, recursive=recursive)


def files(path: str) -> list[str]:
    """Every file under folder ``path``, relative to it."""
    return _disk().files(path)


def sizes(path: str) -> dict[str, int]:
    """Every file under folder ``path`` and its size."""
    return trees.sizes(_disk(), path)


def rename(source: str, dest: str) -> None:
    """Move ``source`` to ``dest``, replacing it."""
    disk = _disk()
    disk.rename(disk.normalize(source), disk.normalize(dest))


def size(path: str) -> int:
    """The size of file ``path``; 0 if there is none (a transfer not begun)."""
    try:
        return os.path.getsize(expand(path))
    except FileNotFoundError:
        return 0


def write_at(path: str, offset: int, data: bytes) -> int:
    """Write ``data`` into file ``path`` at ``offset`` (at most its size: parts arrive in
    order), cutting off anything after; returns the new size."""
    disk = _disk()
    path = disk.normalize(path)
    with disk.errors(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "r+b" if os.path.exists(path) else "wb") as f:
            end = f.seek(0, os.SEEK_END)
            if offset > end:
                raise StorageError("file", path, f"a part at {offset} but only {end} bytes came")
            f.seek(offset)
            f.write(data)
            f.truncate()
            return f.tell()


def unpack(tar_path: str, dest: str, sha256: str) -> None:
    """Check the tar a client sent, extract it into a temporary sibling of ``dest``, rename
    that to ``dest`` and remove the tar."""
    disk = _disk()
    tar_path, dest = disk.normalize(tar_path), disk.normalize(dest)
    with disk.errors(dest):
        if trees.file_sha256(tar_path) != sha256:
            os.remove(tar_path)
            raise StorageError(
                "file", dest, "the folder sent arrived damaged (checksum differs); send it again"
            )
        temp = trees.partial_path(dest, sha256)
        if os.path.exists(temp):
            disk.rm(temp, recursive=True)
        trees.unpack_tar(tar_path, temp)
        disk.rename(temp, dest)
        os.remove(tar_path)


def pack(path: str) -> dict[str, Any]:
    """Write a tar of folder ``path`` to a temporary file here, for a client to fetch with
    ``read_range``: its ``tar`` path, ``size`` and ``sha256``."""
    disk = _disk()
    path = disk.normalize(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} is not a folder (nothing is there); check the path")
    folder = os.path.join(tempfile.gettempdir(), f"rh-data-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    target = os.path.basename(trees.partial_path(os.path.join(folder, "pack"), path)) + ".tar"
    target = os.path.join(folder, target)
    with disk.errors(path), open(target, "wb") as f:
        digest = trees.write_tar(path, f)
    return {"tar": target, "size": os.path.getsize(target), "sha256": digest}


def copy(
    source: dict[str, Any], dest: dict[str, Any], counter: progress.Bar | None = None
) -> dict[str, int]:
    """Copy a folder between storage systems from here (``{"system", "path", "options"}``;
    ``file`` is this machine's disk): for cluster <-> bucket, the bytes never leave the
    cluster's side. Returns the files copied and their sizes (``counter`` counts bytes)."""
    src = storage_for(source["system"], source.get("options"))
    dst = storage_for(dest["system"], dest.get("options"))
    return trees.copy_tree(src, source["path"], dst, dest["path"], counter)


def copy_reporting(
    source: dict[str, Any], dest: dict[str, Any], every: float = REPORT_EVERY
) -> Iterator[dict[str, Any]]:
    """``copy``, for a client that shows its progress: ``{"done", "total", "first"}`` (bytes)
    about every ``every`` seconds while it runs, and last the same with ``"files"``, the
    copy's result."""
    return _reporting(lambda counter: copy(source, dest, counter), "files", every)


def reaches(peer: dict[str, Any]) -> str | None:
    """Whether this machine reaches the daemon described by ``peer`` (see
    ``runhouse.data.peers``): None if it answers, else why not."""
    from runhouse.data import peers  # client code: loaded only by workers that send

    try:
        peers.peer_files(peer).call("instance")
    except Exception as exc:  # any failure means "not from here"; the client goes around
        return f"{type(exc).__name__}: {exc}"
    return None


def push(source: str, peer: dict[str, Any], dest: str, counter: progress.Bar | None = None) -> None:
    """Send folder or file ``source`` on this machine to ``dest`` on another cluster,
    straight to its daemon (``peer``: how to reach it, from ``peers.reach``)."""
    from runhouse.data import peers

    path = expand(source)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist; check the path")
    peers.send(path, peer, dest, counter)


def push_reporting(
    source: str, peer: dict[str, Any], dest: str, every: float = REPORT_EVERY
) -> Iterator[dict[str, Any]]:
    """``push``, reporting its progress as ``copy_reporting`` does."""
    return _reporting(lambda counter: push(source, peer, dest, counter), "pushed", every)


def _reporting(
    work: Callable[[progress.Bar], Any], result: str, every: float
) -> Iterator[dict[str, Any]]:
    counter = progress.Bar()  # silent: it only counts
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work(counter)
        except BaseException as exc:
            outcome["error"] = exc

    def counts() -> dict[str, Any]:
        return {"done": counter.done, "total": counter.total, "first": counter.first}

    thread = threading.Thread(target=run, name="rh-data-copy", daemon=True)
    thread.start()
    try:
        while True:
            thread.join(every)
            if not thread.is_alive():
                break
            yield counts()
    finally:
        # A client that went away (or a cancelled call) ends the copy at its next update;
        # what arrived stays in the temporary folder for a re-run.
        counter.stop()
    if "error" in outcome:
        raise outcome["error"]
    yield {**counts(), result: outcome["value"]}


def copy_file(
    source: dict[str, Any], dest: dict[str, Any], counter: progress.Bar | None = None
) -> None:
    """Copy one file between storage systems from here, into a temporary sibling renamed
    at the end (``counter`` counts its bytes)."""
    src = storage_for(source["system"], source.get("options"))
    dst = storage_for(dest["system"], dest.get("options"))
    src_file, dst_file = src.normalize(source["path"]), dst.normalize(dest["path"])
    with dst.staged(dst_file) as temporary:
        trees.copy_file(src, src_file, dst, temporary, counter)


def table_rows(path: str) -> int:
    """The number of rows of the table at ``path`` (from the parquet footers)."""
    return int(tables.open_dataset(_disk(), path).count_rows())


def table_columns(path: str) -> list[str]:
    """The column names of the table at ``path``."""
    return list(tables.open_dataset(_disk(), path).schema.names)


def table_fetch(path: str, columns: list[str] | None, filter: Any) -> Any:
    """The table at ``path`` (its ``columns``, the rows ``filter`` keeps) as a pyarrow
    Table, for a client elsewhere."""
    dataset = tables.open_dataset(_disk(), path)
    cols = tables.check_columns(dataset, columns)
    return dataset.to_table(columns=cols, filter=tables.as_filter(filter))


def table_stream(path: str, options: dict[str, Any]) -> Iterator[Any]:
    """The table at ``path`` batch by batch (pyarrow record batches), sent to the client
    as they are read (``options``: as ``Table.stream`` takes them, but the format)."""
    dataset = tables.open_dataset(_disk(), path)
    yield from tables.stream(
        dataset,
        options["batch_size"],
        options.get("columns"),
        options.get("shuffle_seed"),
        options.get("drop_last", False),
        options.get("shuffle_buffer"),
    )


class _Ops:
    """The operations by name (and nothing else of this module)."""

    def __init__(self, **ops: Callable[..., Any]) -> None:
        self.__dict__.update(ops)

    def __getattr__(self, name: str) -> Any:
        known = ", ".join(sorted(self.__dict__))
        raise AttributeError(f"no data operation {name!r} on this cluster; known: {known}")


OPS = _Ops(
    copy=copy,
    copy_file=copy_file,
    copy_reporting=copy_reporting,
    exists=exists,
    expand=expand,
    files=files,
    instance=instance,
    isdir=isdir,
    ls=ls,
    mkdir=mkdir,
    pack=pack,
    push=push,
    push_reporting=push_reporting,
    put=put,
    read=read,
    reaches=reaches,
    read_range=read_range,
    rename=rename,
    rm=rm,
    set_environ=set_environ,
    size=size,
    sizes=sizes,
    table_columns=table_columns,
    table_fetch=table_fetch,
    table_rows=table_rows,
    table_stream=table_stream,
    unpack=unpack,
    write=write,
    write_at=write_at,
    write_private=write_private,
)
