"""``den_auth`` on the client: a team shares one cluster, each member with their own Den token.

    >>> rh.login(token="rhd_...", den_url="http://den:8900")
    >>> c = rh.cluster(name="/acme/clusters/gpu", host="10.0.0.5", den_auth=True).save()
    >>> c.share(["bob"], access_level="write")        # bob may now call it with his token

A cluster with ``den_auth=True`` starts its daemon with Den's URL and the cluster's address
in Den (``--den-url``, ``--den-resource``); the daemon then lets in, besides its own token,
every Den token whose user may write that address. A client logged in to Den sends the
user's Den token to such a daemon instead of reading the daemon's token from its machine
(a teammate may not be able to); inside the daemon's own workers the daemon's token is read,
so code on the cluster does not depend on Den to reach it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runhouse.client.hosts import DaemonHost, LocalHost
from runhouse.config import configs
from runhouse.exceptions import DaemonError
from runhouse.names.address import Address
from runhouse.names.resolver import store_for
from runhouse.wire import home
from runhouse.wire.exposure import Exposure


def problem(insecure: bool) -> str | None:
    """Why a cluster cannot have ``den_auth`` here, or None."""
    if not configs.get("den_url"):
        return (
            "den_auth=True checks tokens against a Den server, and this client has none "
            "configured; log in first (`runhouse login --den-url URL --token TOKEN`), or leave "
            "den_auth off (the cluster's own token is required)"
        )
    if insecure:
        return "den_auth=True checks callers' tokens; it cannot go with insecure=True (no token)"
    return None


def exposure_fields(den_auth: bool, address: Address | None) -> dict[str, Any]:
    """The den_auth part of a cluster's ``Exposure``: Den's URL and the cluster's address
    there (None when it has none: starting the daemon then says to save it in Den)."""
    if not den_auth:
        return {}
    in_den = address is not None and address.store == "den" and len(address.parts) >= 2
    return {"den_url": configs.get("den_url"), "den_resource": str(address) if in_den else None}


def startable(how: Exposure) -> Exposure:
    """``how``, checked before a daemon starts with it: with den_auth, the cluster must be
    saved at its address in Den (the daemon asks Den who may write it)."""
    if not how.den_url or not how.den_resource:
        return how  # nothing to check here; Exposure.problem() names what is missing
    address = Address("den", tuple(how.den_resource.strip("/").split("/")))
    if not store_for(address).exists(address):
        raise DaemonError(
            f"Not starting the daemon with den_auth: nothing is saved at {address} in Den, and "
            "the daemon lets in the users who may write it. Save the cluster there first: "
            "c.save()"
        )
    return how


def token(how: Exposure, host: DaemonHost, info: dict[str, Any]) -> str | None:
    """The bearer token to send to the daemon ``info`` describes: the user's Den token when
    both the cluster and the running daemon use den_auth and the user is logged in; else
    the daemon's own token (None when the daemon wants none)."""
    if not info.get("auth", True):
        return None
    mine = configs.get("token")
    if how.den_url and info.get("den_url") and mine and not _own_worker(host):
        return str(mine)
    return host.token()


def _own_worker(host: DaemonHost) -> bool:
    """Whether this process is a worker of the very daemon ``host`` runs."""
    root = home.daemon_dir()
    if root is None or not isinstance(host, LocalHost):
        return False
    return Path(root).resolve() == host.files.root.resolve()
