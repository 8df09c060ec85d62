"""Moving a folder between two places by the shortest real path (architecture.md, "Data"):

| from -> to                    | path                                                      |
| ----------------------------- | --------------------------------------------------------- |
| here <-> SSH cluster          | rsync over the SSH control connection (never .gitignore'd) |
| here <-> the local cluster    | the same disk: a local rsync (or copy)                    |
| here <-> tls/none cluster     | a tar streamed in parts through the daemon's HTTP         |
| cluster <-> bucket            | the cluster's worker copies it itself (``remote_ops.copy``) |
| here <-> bucket, file <-> file | the storage interface, from here, many files at once       |
| bucket -> same service        | the service's server-side copy (else through here)        |
| cluster -> same cluster       | a copy on the cluster                                     |
| cluster -> other cluster      | daemon to daemon when the source reaches the destination's |
|                               | daemon (``runhouse.data.peers``); else through here, logged |

Every path writes into a temporary sibling of the destination (``trees.partial_path``: the
same name on every try, so a re-run resumes it) and renames it at the end, once what
arrived is checked: a destination that looks complete is complete. Nothing at the source is
touched. Client side only.

Each path feeds a progress bar (``runhouse.data.progress``; drawn on a terminal only):
fsspec's callbacks here, rsync's ``--info=progress2`` line, the tar's parts through the
daemon, and for a copy the cluster makes itself, the counts its worker streams back.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runhouse.data import remote_ops, trees
from runhouse.data.cluster_files import ClusterFiles
from runhouse.data.peers import reach
from runhouse.data.progress import Bar, bar
from runhouse.data.storage import Storage, storage_for
from runhouse.data.through_daemon import (
    http_download,
    http_download_file,
    http_upload,
    http_upload_file,
)
from runhouse.exceptions import CommandError, SSHError

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

log = logging.getLogger("runhouse")
# rsync's -z is for code: most data is compressed already (parquet, images, weights), and
# on random bytes -z cost downloads 10% (272 against 303 MB/s over a loopback sshd, 1 GiB in
# 3,291 files; uploads the same either way), the sender's CPU being the bottleneck.
COMPRESS = False


@dataclass
class Place:
    """Where a folder is: a storage system (``file``, ``s3``, ...) or a cluster, and a path."""

    system: str | Cluster
    path: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def cluster(self) -> Cluster | None:
        """The cluster, if the folder is on one."""
        return None if isinstance(self.system, str) else self.system

    def storage(self) -> Storage:
        """The storage system (not for a cluster)."""
        assert isinstance(self.system, str)
        return storage_for(self.system, self.options)

    def files(self) -> Storage | ClusterFiles:
        """The operations on files there."""
        cluster = self.cluster
        return ClusterFiles(cluster) if cluster is not None else self.storage()

    def spec(self) -> dict[str, Any]:
        """How a cluster's worker names this place (a cluster's own disk is ``file``)."""
        system = "file" if self.cluster is not None else self.system
        return {"system": system, "path": self.path, "options": self.options}

    def url(self) -> str:
        """The place for people: ``s3://bucket/x``, ``/abs/path``, ``<cluster>:~/x``."""
        return self.files().url(self.path)


def copy(src: Place, dst: Place, progress: bool | None = None) -> None:
    """Copy folder ``src`` to ``dst`` (replacing what is there) by the shortest path, with
    a progress bar on a terminal (``progress=False``: none; None: the ``progress`` setting)."""
    a, b = src.cluster, dst.cluster
    if a is not None and b is not None and not same_cluster(a, b):
        return between_clusters(src, dst, progress)
    with bar(f"{src.url()} -> {dst.url()}", progress) as shown:
        if a is None and b is None:
            source, target = src.storage(), dst.storage()
            if "file" not in (src.system, dst.system) and not trees.server_side(source, target):
                log.info("Copying %s to %s through this machine.", src.url(), dst.url())
            trees.copy_tree(source, src.path, target, dst.path, shown)
        elif a is not None and b is not None:
            cluster_copy(ClusterFiles(a), src, dst, shown)
        elif b is not None:
            if src.system == "file":
                upload(src.storage().normalize(src.path), b, dst.path, shown)
            else:  # bucket -> cluster: the cluster fetches it
                cluster_copy(ClusterFiles(b), src, dst, shown)
        else:
            assert a is not None
            if dst.system == "file":
                download(a, src.path, dst.storage().normalize(dst.path), shown)
            else:  # cluster -> bucket: the cluster sends it, the bytes never come here
                cluster_copy(ClusterFiles(a), src, dst, shown)


def copy_file(src: Place, dst: Place, progress: bool | None = None) -> None:
    """Copy one file from ``src`` to ``dst`` by the shortest path (as ``copy`` does a
    folder), into a temporary name renamed at the end, with a progress bar on a terminal."""
    a, b = src.cluster, dst.cluster
    specs = (src.spec(), dst.spec())
    if a is not None and b is not None and not same_cluster(a, b):
        peer = direct_path(src, dst)
        if peer is None:  # through here: down to a temporary file, then up from it
            with tempfile.TemporaryDirectory(prefix="rh-transfer-") as folder:
                here = Place("file", os.path.join(folder, "file"))
                copy_file(src, here, progress)
                copy_file(here, dst, progress)
            return
    with bar(f"{src.url()} -> {dst.url()}", progress) as shown:
        if a is None and b is None:
            remote_ops.copy_file(*specs, shown)  # the same work a cluster does, done here
        elif a is not None and b is not None and same_cluster(a, b):
            ClusterFiles(a).call("copy_file", *specs)
        elif a is not None and b is not None:
            on_cluster(ClusterFiles(a), "push", (src.path, peer, dst.path), shown)
        elif b is not None:
            if src.system == "file":
                upload(src.storage().normalize(src.path), b, dst.path, shown)
            else:  # bucket -> cluster: the cluster fetches it
                ClusterFiles(b).call("copy_file", *specs)
        else:
            assert a is not None
            if dst.system == "file":
                download(a, src.path, dst.storage().normalize(dst.path), shown)
            else:  # cluster -> bucket: the cluster sends it
                ClusterFiles(a).call("copy_file", *specs)


def cluster_copy(files: ClusterFiles, src: Place, dst: Place, shown: Bar | None = None) -> None:
    """Have the cluster of ``files`` copy ``src`` to ``dst`` itself; a bar that draws is fed
    the counts its worker streams back while it copies."""
    on_cluster(files, "copy", (src.spec(), dst.spec()), shown)


def on_cluster(files: ClusterFiles, op: str, args: tuple[Any, ...], shown: Bar | None) -> None:
    """Run data operation ``op`` on the cluster of ``files``; for a bar that draws, its
    ``<op>_reporting`` form, whose counts feed the bar."""
    if shown is None or shown.stream is None:
        files.call(op, *args)
        return
    for report in files.stream(f"{op}_reporting", *args):
        if report.get("total") is not None and shown.total is None:
            shown.begin(report["total"], report["first"])
        if "done" in report:
            shown.reach(report["done"])


def between_clusters(src: Place, dst: Place, progress: bool | None = None) -> None:
    """Copy a folder from one cluster to another: daemon to daemon when the source reaches
    the destination's daemon, else through this machine."""
    peer = direct_path(src, dst)
    if peer is None:
        _through_here(src, dst, progress)
        return
    assert src.cluster is not None
    with bar(f"{src.url()} -> {dst.url()}", progress) as shown:
        on_cluster(ClusterFiles(src.cluster), "push", (src.path, peer, dst.path), shown)


def direct_path(src: Place, dst: Place) -> dict[str, Any] | None:
    """How the source cluster's worker sends straight to the destination cluster's daemon
    (``runhouse.data.peers``), or None, said in a log line, when the copy must go through
    this machine."""
    a, b = src.cluster, dst.cluster
    assert a is not None and b is not None
    ClusterFiles(b).expand(dst.path)  # the destination's daemon runs (started if allowed)
    peer = reach(a, b)
    why = "the source cannot reach the destination's daemon directly"
    if peer is not None:
        why = ClusterFiles(a).call("reaches", peer) or ""
    if not why:
        return peer
    log.info("Copying %s to %s through this machine (%s).", src.url(), dst.url(), why)
    return None


def same_cluster(a: Cluster, b: Cluster) -> bool:
    """Whether two cluster objects reach the same daemon (every cluster without a host is
    this machine's daemon)."""
    return a is b or (a.ips, a.server_port) == (b.ips, b.server_port) or not (a.ips or b.ips)


def route(cluster: Cluster) -> str:
    """How files reach ``cluster`` from here: ``local`` (this machine's daemon), ``rsync``
    (over SSH) or ``http`` (through the daemon: a tls/none cluster)."""
    if not cluster.ips:
        return "local"
    return "rsync" if cluster.server_connection_type == "ssh" else "http"


def upload(local: str, cluster: Cluster, path: str, shown: Bar | None = None) -> None:
    """Copy local folder or file ``local`` to ``path`` on ``cluster`` (rsync, or parts
    through the daemon) into a temporary name renamed at the end (``shown``: its progress)."""
    folder = os.path.isdir(local)
    if not folder and not os.path.isfile(local):
        raise FileNotFoundError(f"{local} does not exist (nothing is there); check the path")
    shown = shown or Bar()
    files = ClusterFiles(cluster)
    dest = files.expand(path)
    if route(cluster) == "http":
        return (http_upload if folder else http_upload_file)(files, local, dest, shown)
    temp = trees.partial_path(dest, local)
    wanted = trees.sizes(storage_for("file"), local) if folder else {}
    shown.begin(sum(wanted.values()) if folder else os.path.getsize(local))
    with _cut_says_rerun(files.url(dest)):
        cluster.runner.rsync(
            local, temp, up=True, gitignore=False, progress=_fed(shown), compress=COMPRESS
        )
    if folder:
        _check_or_drop(wanted, files, temp)
    files.rename(temp, dest)


def download(cluster: Cluster, path: str, local_dest: str, shown: Bar | None = None) -> None:
    """Copy folder or file ``path`` on ``cluster`` to ``local_dest`` here (rsync, or parts
    through the daemon) into a temporary name renamed at the end (``shown``: its progress)."""
    shown = shown or Bar()
    files = ClusterFiles(cluster)
    source = files.expand(path)
    if not files.exists(source):
        raise FileNotFoundError(f"{files.url(source)} does not exist; check the path")
    folder = files.isdir(source)
    if route(cluster) == "http":
        fetch = http_download if folder else http_download_file
        return fetch(files, source, local_dest, shown)
    local = storage_for("file")
    temp = trees.partial_path(local_dest, files.url(source))
    wanted = files.sizes(source) if folder else {}
    shown.begin(sum(wanted.values()) if folder else int(files.call("size", source)))
    with _cut_says_rerun(local_dest):
        cluster.runner.rsync(
            f"{source}/" if folder else source,
            temp,
            up=False,
            gitignore=False,
            progress=_fed(shown),
            compress=COMPRESS,
        )
    if folder:
        _check_or_drop(wanted, local, temp)
    local.rename(temp, local_dest)


@contextmanager
def _cut_says_rerun(dest: str) -> Iterator[None]:
    # rsync failing midway (the connection died, say): the same error, saying what to do.
    try:
        yield
    except (SSHError, CommandError) as exc:
        exc.args = (
            f"{exc.args[0] if exc.args else exc}\nThe copy to {dest} was cut; what arrived "
            "is kept aside (not at the destination): run the same transfer again to finish it.",
            *exc.args[1:],
        )
        raise


def _fed(shown: Bar) -> Callable[[int], None] | None:
    # rsync reports its progress only for a bar that draws: otherwise it runs as it always has.
    return shown.reach if shown.stream is not None else None


def _check_or_drop(wanted: dict[str, int], files: Storage | ClusterFiles, temp: str) -> None:
    # rsync never deletes in the temporary folder: a file there that the source no longer
    # has would stay on every re-run, so a mismatch starts the next run afresh.
    found = files.sizes(temp) if isinstance(files, ClusterFiles) else trees.sizes(files, temp)
    try:
        trees.check_same(wanted, found, files.url(temp))
    except Exception:
        files.rm(temp, recursive=True)
        raise


def _through_here(src: Place, dst: Place, progress: bool | None) -> None:
    with tempfile.TemporaryDirectory(prefix="rh-transfer-") as folder:
        here = Place("file", os.path.join(folder, "data"))
        copy(src, here, progress)
        copy(here, dst, progress)
