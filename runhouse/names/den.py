"""The Den store: configs, versions, sharing and groups on the metadata server, over HTTP.

    >>> store = DenStore()                                   # den_url and token from configs
    >>> store.append(Address("den", ("ana", "x")), {"name": "/ana/x", ...}, author="ana")
    ResourceVersion(version=1, ...)
    >>> store.share(Address("den", ("ana", "x")), ["bo", "/acme/ml"], "read")
    ['bo', '/acme/ml']

Den records the token's user as a version's author (``author`` is who the client thinks it
is; Den knows). Den paths are addresses without the leading "/".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from runhouse.config import configs
from runhouse.exceptions import (
    DenError,
    ResourceExistsError,
    ResourceNotFoundError,
    StoreUnavailableError,
    VersionConflictError,
    VersionNotFoundError,
)
from runhouse.names.address import Address
from runhouse.names.den_client import DenClient, Reply
from runhouse.names.store import Entry, ResourceVersion, Store

Access = Literal["read", "write", "deny"]
Role = Literal["reader", "writer", "admin"]
Visibility = Literal["private", "unlisted", "public"]
ACCESS_LEVELS: tuple[str, ...] = ("read", "write", "deny")
ROLES: tuple[str, ...] = ("reader", "writer", "admin")
VISIBILITIES: tuple[str, ...] = ("private", "unlisted", "public")


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to: the username, whether a Den admin, and the groups."""

    username: str
    admin: bool = False
    groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Grant:
    """Access given on a path to a user (``"bo"``) or a group (``"/acme/ml"``)."""

    principal: str
    access: str


@dataclass(frozen=True)
class Member:
    """A group member, their role, and the group the role comes from (an ancestor, maybe)."""

    username: str
    role: str
    via: str


@dataclass(frozen=True)
class Defaults:
    """Settings kept on Den, and where each key comes from (``"user"`` or ``"/acme/ml"``)."""

    defaults: dict[str, Any]
    sources: dict[str, str]


@dataclass(frozen=True)
class GroupInfo:
    """A group: its path (``"acme/ml"``), members (inherited ones too) and defaults."""

    path: str
    members: list[Member]
    defaults: dict[str, Any]


class DenStore(Store):
    """Configs on Den; ``url`` and ``token`` default to the den_url and token settings."""

    kind = "den"

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self._url = url
        self._token = token
        self._client: DenClient | None = None
        self._lock = threading.Lock()

    def client(self, address: Address | None = None) -> DenClient:
        """The HTTP client for the current den_url and token (rebuilt when they change)."""
        url = self._url or configs.get("den_url")
        if not url:
            raise StoreUnavailableError(str(address or "/"), _no_den_reason(address))
        token = self._token if self._token is not None else configs.get("token")
        ca_cert = configs.get("den_ca_cert")
        with self._lock:
            client = self._client
            if client is None or (client.url, client.token, client.ca_cert) != (
                url.rstrip("/"),
                token,
                ca_cert,
            ):
                if client is not None:
                    client.close()
                client = self._client = DenClient(url, token, ca_cert)
        return client

    def describe(self, address: Address) -> str:
        """The URL of ``address`` on Den."""
        url = self._url or configs.get("den_url")
        if not url:
            return "Den (den_url is unset)"
        return f"{url.rstrip('/')}/v1/resources/{_path(address)}"

    def read(self, address: Address) -> dict[str, Any]:
        """The current config saved at ``address``."""
        body = self._get_resource(address)
        return dict(body["config"])

    def exists(self, address: Address) -> bool:
        """Whether ``address`` holds a resource the caller may read."""
        reply = self._call(address, "GET", "resources", accept=(404,))
        return reply.status != 404

    def append(
        self,
        address: Address,
        config: dict[str, Any],
        author: str,
        overwrite: bool = True,
        expected_version: int | None = None,
    ) -> ResourceVersion:
        """Save ``config`` as the next version (Den records the token's user as author)."""
        body = {"config": config, "overwrite": overwrite, "expected_version": expected_version}
        reply = self._call(address, "PUT", "resources", body=body, accept=(409,))
        if reply.status == 409:
            if reply.body.get("error") == "version_conflict":
                current = reply.body.get("current_version")
                expected = expected_version if expected_version is not None else 0
                raise VersionConflictError(str(address), expected, current)
            raise ResourceExistsError(str(address))
        return ResourceVersion(
            version=int(reply.body["version"]),
            timestamp=str(reply.body["timestamp"]),
            author=str(reply.body["author"]),
            config=config,
        )

    def history(self, address: Address, limit: int | None = None) -> list[ResourceVersion]:
        """Saved versions of ``address``, newest first."""
        asked = None if limit is None else max(limit, 1)  # limit 0 still checks existence
        reply = self._call(address, "GET", "history", params={"limit": asked}, accept=(404,))
        if reply.status == 404:
            raise self._not_found(address)
        versions = [_version(v) for v in reply.body["versions"]]
        return versions if limit is None or limit > 0 else []

    def version(self, address: Address, number: int) -> ResourceVersion:
        """One saved version of ``address`` by number."""
        body = self._get_resource(address, number)
        return _version(body)

    def delete(self, address: Address) -> bool:
        """Remove ``address``'s config and all its versions; whether anything was there."""
        reply = self._call(address, "DELETE", "resources", accept=(404,))
        return reply.status != 404 and bool(reply.body.get("deleted"))

    def ls(self, folder: Address) -> list[Entry]:
        """What the caller may see directly inside ``folder``, sorted by name."""
        reply = self._call(folder, "GET", "folders", accept=(404,))
        if reply.status == 404:
            return []
        return [
            Entry(
                name=str(e["name"]),
                address=str(e["address"]),
                kind="folder" if e["kind"] == "folder" else "resource",
                resource_type=e.get("resource_type"),
                version=e.get("version"),
            )
            for e in reply.body["entries"]
        ]

    # Sharing: on a resource or a folder; needs admin on it.

    def visibility(self, address: Address) -> str:
        """Who may read ``address`` without a grant: private, unlisted or public."""
        return str(self._get_resource(address)["visibility"])

    def set_visibility(self, address: Address, visibility: str) -> str:
        """Make ``address`` private, unlisted (readable by address) or public."""
        _check_choice("visibility", visibility, VISIBILITIES)
        body = {"visibility": visibility}
        return str(self._call(address, "PUT", "visibility", body=body).body["visibility"])

    def share(self, address: Address, principals: list[str], access: str) -> list[str]:
        """Give users (``"bo"``) or groups (``"/acme"``) access; returns who was added."""
        _check_choice("access_level", access, ACCESS_LEVELS)
        body = {"principals": principals, "access": access}
        reply = self._call(address, "POST", "grants", body=body, accept=(404,))
        if reply.status == 404:
            if reply.body.get("unknown"):  # a user or group Den does not know
                message = str(reply.body.get("message"))
                raise DenError(self.client().url, 404, "not_found", message)
            raise self._not_found(address)
        return list(reply.body["added"])

    def revoke(self, address: Address, principals: list[str] | None = None) -> list[str]:
        """Remove the grants of ``principals`` (every grant when ``None``); who lost one."""
        body = {"principals": principals}
        return list(self._call(address, "DELETE", "grants", body=body).body["removed"])

    def grants(self, address: Address) -> list[Grant]:
        """The grants on ``address`` itself (not those on folders above it)."""
        rows = self._call(address, "GET", "grants").body["grants"]
        return [Grant(str(g["principal"]), str(g["access"])) for g in rows]

    # Secrets' values: Den seals them beside the secret's config; they travel only in
    # request and answer bodies, never in a URL.

    def put_secret_values(self, address: Address, version: int, values: dict[str, str]) -> None:
        """Keep ``values`` as those of ``version`` of the secret at ``address``."""
        body = {"values": values}
        self._call(address, "PUT", "secret-values", body=body, params={"version": version})

    def secret_values(
        self, address: Address, version: int | None = None
    ) -> tuple[int, dict[str, str]] | None:
        """The values of ``version`` (default: the newest that has any) and its number;
        ``None`` if Den has none there that the caller may read."""
        params = None if version is None else {"version": version}
        reply = self._call(address, "GET", "secret-values", params=params, accept=(404,))
        if reply.status == 404:
            return None
        values = reply.body["values"]
        return int(reply.body["version"]), {str(k): str(v) for k, v in values.items()}

    def delete_secret_values(self, address: Address) -> bool:
        """Forget the values of every version of ``address``; whether there were any."""
        reply = self._call(address, "DELETE", "secret-values", accept=(404,))
        return reply.status != 404 and bool(reply.body.get("deleted"))

    # Groups: paths such as ("acme", "ml").

    def whoami(self) -> Identity:
        """The user the token belongs to."""
        body = self.client().request("GET", "/v1/whoami").body
        return Identity(
            str(body["username"]), bool(body.get("admin")), list(body.get("groups", []))
        )

    def group(self, group: Address) -> GroupInfo | None:
        """The group at ``group`` with its members and defaults; ``None`` if not visible."""
        reply = self._call(group, "GET", "groups", accept=(404,))
        if reply.status == 404:
            return None
        members = [
            Member(str(m["username"]), str(m["role"]), str(m.get("via") or _path(group)))
            for m in reply.body.get("members", [])
        ]
        return GroupInfo(str(reply.body["path"]), members, dict(reply.body.get("defaults") or {}))

    def create_group(self, group: Address) -> bool:
        """Create the group; ``False`` if it already existed."""
        return self._call(group, "PUT", "groups", accept=(409,)).status != 409

    def delete_group(self, group: Address) -> bool:
        """Delete the group; whether it existed."""
        reply = self._call(group, "DELETE", "groups", accept=(404,))
        return reply.status != 404 and bool(reply.body.get("deleted"))

    def add_member(self, group: Address, username: str, role: str = "reader") -> None:
        """Give ``username`` a role in the group (replacing the role they had there)."""
        _check_choice("role", role, ROLES)
        self._call(group, "PUT", "group-members", body={"username": username, "role": role})

    def remove_member(self, group: Address, username: str) -> bool:
        """Take ``username`` out of the group; whether they were in it."""
        reply = self._call(group, "DELETE", "group-members", params={"username": username})
        return bool(reply.body.get("removed"))

    def set_group_defaults(self, group: Address, defaults: dict[str, Any]) -> dict[str, Any]:
        """Replace the group's defaults (settings its members get unless they set their own)."""
        body = {"defaults": defaults}
        return dict(self._call(group, "PUT", "group-defaults", body=body).body["defaults"])

    # Defaults: the caller's own, and merged with their groups'.

    def defaults(self, merged: bool = False) -> Defaults:
        """The caller's own defaults, or (``merged``) their groups' under their own: the
        nearest group wins, the caller's own win over all."""
        params = {"merged": "true"} if merged else None
        body = self.client().request("GET", "/v1/defaults", params=params).body
        return Defaults(dict(body["defaults"]), dict(body.get("sources") or {}))

    def set_defaults(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """Replace the caller's own defaults on Den; returns them as Den stored them."""
        body = {"defaults": defaults}
        return dict(self.client().request("PUT", "/v1/defaults", body).body["defaults"])

    def _call(
        self,
        address: Address,
        method: str,
        noun: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        accept: tuple[int, ...] = (),
    ) -> Reply:
        path = f"/v1/{noun}/{_path(address)}"
        client = self.client(address)
        return client.request(method, path, body, params, accept=accept, what=str(address))

    def _get_resource(self, address: Address, number: int | None = None) -> dict[str, Any]:
        params = None if number is None else {"version": number}
        reply = self._call(address, "GET", "resources", params=params, accept=(404,))
        if reply.status == 404:
            available = reply.body.get("versions")
            if number is not None and isinstance(available, list) and available:
                raise VersionNotFoundError(str(address), number, sorted(available))
            raise self._not_found(address)
        return reply.body

    def _not_found(self, address: Address) -> ResourceNotFoundError:
        return ResourceNotFoundError(
            str(address),
            self.describe(address),
            "(Den answers so for a resource you may not read, too: ask its owner to share it.)",
        )


def _path(address: Address) -> str:
    return "/".join(address.parts)


def _version(body: dict[str, Any]) -> ResourceVersion:
    return ResourceVersion(
        version=int(body["version"]),
        timestamp=str(body["timestamp"]),
        author=str(body["author"]),
        config=dict(body["config"]),
    )


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, not {value!r}.")


def _no_den_reason(address: Address | None) -> str:
    instead = f"~/{address.name}" if address is not None and address.name else "~/x"
    return (
        "addresses starting with '/' live on the metadata server (Den), and no metadata "
        "server is configured (den_url is unset). Log in with `runhouse login --den-url URL "
        f"--token TOKEN`, or save it in the local store instead, e.g. '{instead}'."
    )
