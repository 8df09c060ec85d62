"""Cluster to cluster, daemon to daemon: the source cluster's worker sends a folder or a
file straight to the destination cluster's daemon, the bytes never passing through the
client.

    >>> peer = reach(a, b)                      # on the client: how a's daemon reaches b's
    >>> send("/home/u/data", peer, "~/data")    # in a's worker (remote_ops.push)

The client decides whether a direct path exists (``reach``): an exposed daemon (tls/none)
is reached at its host's address; an SSH-tunnelled one listens on its host's loopback
only, so only a cluster on the same machine reaches it. Otherwise the copy goes through
the client (``transfers``). A folder goes as a tar in parts that resumes, like an upload
through a daemon (``through_daemon.http_upload``); a file in parts to a temporary name renamed
at the end. Workers import this module only when they send: it uses the client.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from runhouse.client.hosts import ReachedHost
from runhouse.data.cluster_files import ClusterFiles
from runhouse.data.progress import Bar
from runhouse.data.through_daemon import http_upload, http_upload_file

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def machine(cluster: Cluster) -> str:
    """The machine a cluster's daemon runs on: its head's address, or ``localhost``."""
    ips = cluster.ips
    return "localhost" if not ips or ips[0] in LOOPBACK else ips[0]


def reach(src: Cluster, dst: Cluster) -> dict[str, Any] | None:
    """How ``src``'s daemon reaches ``dst``'s running daemon directly (address, info, token,
    certificate, name), or None when it cannot: then the copy goes through the client."""
    host = dst.daemon_host
    info = host.info()
    if info is None:
        return None
    if dst.exposure.host != "127.0.0.1":
        address = dst.ips[0]
    elif machine(src) == machine(dst):
        address = "127.0.0.1"
    else:
        return None
    token = host.token() if info.get("auth", True) else None
    return {
        "address": address,
        "info": info,
        "token": token,
        "certificate": host.certificate(info),
        "name": str(dst.rns_address or dst),
    }


def peer_files(peer: dict[str, Any]) -> ClusterFiles:
    """The destination cluster's disk, through its daemon reached by address."""
    from runhouse.resources.cluster import Cluster

    cluster = Cluster(name=peer["name"].rsplit("/", 1)[-1] or None)
    cluster._daemon_host = ReachedHost(
        peer["address"], peer["info"], peer["token"], peer["certificate"]
    )
    return ClusterFiles(cluster)


def send(local_path: str, peer: dict[str, Any], dest: str, counter: Bar | None = None) -> None:
    """Send folder or file ``local_path`` (on this machine) to ``dest`` on the peer's
    cluster; a cut transfer resumes when sent again."""
    files = peer_files(peer)
    dest = files.expand(dest)
    if os.path.isdir(local_path):
        http_upload(files, local_path, dest, counter)
        return
    http_upload_file(files, local_path, dest, counter)
