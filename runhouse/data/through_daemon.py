"""A folder through a daemon's HTTP, for a cluster that has no SSH (tls/none) and for one
daemon sending to another (``runhouse.data.peers``): a tar sent or fetched in parts that
resumes where a cut run stopped, checked by its sha256, unpacked into a temporary sibling of
the destination and renamed at the end. Client side (and workers that send to a peer).
"""

from __future__ import annotations

import hashlib
import os
import shutil

from runhouse.data import trees
from runhouse.data.cluster_files import ClusterFiles
from runhouse.data.progress import Bar
from runhouse.data.storage import storage_for
from runhouse.exceptions import StorageError


def http_upload(files: ClusterFiles, local_dir: str, dest: str, shown: Bar | None = None) -> None:
    """Send local folder ``local_dir`` to absolute path ``dest`` on the cluster as a tar in
    parts through its daemon, resuming a tar a cut run left there; the cluster checks it,
    unpacks it into a temporary sibling and renames that."""
    shown = shown or Bar()
    entries = trees.manifest(local_dir)
    source_id = hashlib.sha256(f"{local_dir}\0{entries}".encode()).hexdigest()
    remote_tar = trees.partial_path(dest, source_id) + ".tar"
    have = int(files.call("size", remote_tar))
    size = trees.tar_size(entries)
    if have > size:
        have = 0
    shown.begin(size, have)
    digest = hashlib.sha256()
    position = 0
    pending = bytearray()
    pending_at = have
    for piece in trees.tar_stream(local_dir, entries):
        digest.update(piece)
        start, position = position, position + len(piece)
        if position <= have:
            continue  # the cluster has this part from an earlier run
        pending += piece[max(0, have - start) :]
        if len(pending) >= trees.CHUNK:
            files.call("write_at", remote_tar, pending_at, bytes(pending))
            pending_at += len(pending)
            shown.reach(pending_at)
            pending.clear()
    if pending:
        files.call("write_at", remote_tar, pending_at, bytes(pending))
        shown.reach(pending_at + len(pending))
    files.call("unpack", remote_tar, dest, digest.hexdigest())


def http_download(
    files: ClusterFiles, source: str, local_dest: str, shown: Bar | None = None
) -> None:
    """Fetch folder ``source`` (an absolute path on the cluster) as a tar in parts through
    the daemon, resuming a tar a cut run left here; check it, unpack it into a temporary
    sibling of ``local_dest`` and rename that."""
    shown = shown or Bar()
    packed = files.call("pack", source)
    local = storage_for("file")
    local_dest = local.normalize(local_dest)
    temp = trees.partial_path(local_dest, packed["sha256"])
    local_tar = temp + ".tar"
    os.makedirs(os.path.dirname(local_tar), exist_ok=True)
    have = os.path.getsize(local_tar) if os.path.exists(local_tar) else 0
    with open(local_tar, "r+b" if have else "wb") as f:
        f.seek(have)
        f.truncate()
        shown.begin(packed["size"], have)
        while have < packed["size"]:
            part = files.call("read_range", packed["tar"], have, trees.CHUNK)
            if not part:
                break
            f.write(part)
            have += len(part)
            shown.reach(have)
    if trees.file_sha256(local_tar) != packed["sha256"]:
        os.remove(local_tar)
        raise StorageError(
            "file", local_dest, f"{files.url(source)} arrived damaged; run the transfer again"
        )
    if os.path.exists(temp):
        shutil.rmtree(temp)
    trees.unpack_tar(local_tar, temp)
    local.rename(temp, local_dest)
    os.remove(local_tar)
    files.rm(packed["tar"])


def http_upload_file(
    files: ClusterFiles, local_file: str, dest: str, shown: Bar | None = None
) -> None:
    """Send local file ``local_file`` to absolute path ``dest`` on the cluster in parts
    through its daemon, into a temporary name (resumed by a re-run) renamed at the end."""
    shown = shown or Bar()
    temp = trees.partial_path(dest, f"{local_file}\0{os.path.getmtime(local_file)}")
    size = os.path.getsize(local_file)
    have = int(files.call("size", temp))
    have = have if have <= size else 0
    shown.begin(size, have)
    with open(local_file, "rb") as f:
        f.seek(have)
        while have < size and (part := f.read(trees.CHUNK)):
            have = int(files.call("write_at", temp, have, part))
            shown.reach(have)
    if have != size:
        files.rm(temp)
        raise StorageError("file", local_file, "it changed while it was sent; send it again")
    files.rename(temp, dest)


def http_download_file(
    files: ClusterFiles, source: str, local_dest: str, shown: Bar | None = None
) -> None:
    """Fetch file ``source`` (an absolute path on the cluster) in parts through the daemon
    into a temporary name here (resumed by a re-run), renamed to ``local_dest`` at the end."""
    shown = shown or Bar()
    size = int(files.call("size", source))
    if size == 0 and not files.exists(source):
        raise FileNotFoundError(f"{files.url(source)} does not exist; check the path")
    local = storage_for("file")
    local_dest = local.normalize(local_dest)
    temp = trees.partial_path(local_dest, files.url(source))
    os.makedirs(os.path.dirname(temp), exist_ok=True)
    have = os.path.getsize(temp) if os.path.exists(temp) else 0
    have = have if have <= size else 0
    shown.begin(size, have)
    with open(temp, "r+b" if have else "wb") as f:
        f.seek(have)
        f.truncate()
        while have < size and (part := files.call("read_range", source, have, trees.CHUNK)):
            f.write(part)
            have += len(part)
            shown.reach(have)
    if have != size:
        raise StorageError("file", local_dest, f"{files.url(source)} changed while it came")
    local.rename(temp, local_dest)
