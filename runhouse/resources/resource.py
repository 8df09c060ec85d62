"""The ``Resource`` base class: a JSON-able config with a name, versions and behaviour.

    >>> env = rh.env(name="np", reqs=["numpy"]).save()    # version 1 at ~/np
    >>> env.reqs.append("pandas"); env.save()              # version 2
    >>> rh.load("np").reqs
    ['numpy', 'pandas']
    >>> env.rollback(1).reqs                               # version 3, equal to version 1
    ['numpy']

A subclass sets ``resource_type``, takes its fields as ``__init__`` keywords and adds them in
``config()``; the inherited ``from_config`` passes a config's fields back to ``__init__``.
"""

from __future__ import annotations

import getpass
import inspect
import logging
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from runhouse.config import configs, looks_like_credential
from runhouse.exceptions import ResourceTypeMismatchError, StoreUnavailableError
from runhouse.names.address import Address
from runhouse.names.den import DenStore
from runhouse.names.folders import resource_address
from runhouse.names.resolver import store_for
from runhouse.names.store import ResourceVersion
from runhouse.resources.registry import class_for, register

R = TypeVar("R", bound="Resource")
log = logging.getLogger("runhouse")
_TYPE_KEYS = ("resource_type", "resource_subtype")


class Resource:
    """Something Runhouse can name, save, version, load and share."""

    resource_type: ClassVar[str] = "resource"

    def __init__(self, name: str | None = None) -> None:
        self._address: Address | None = None
        self.name = name

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register(cls)

    @property
    def name(self) -> str | None:
        """The last segment of the address (``x`` for ``~/team/x``), or ``None`` if unnamed."""
        return self._address.name if self._address else None

    @name.setter
    def name(self, value: str | None) -> None:
        self._address = resource_address(value) if value is not None else None

    @property
    def rns_address(self) -> str | None:
        """The absolute address (``~/team/x``, ``/org/team/x``), or ``None`` if unnamed."""
        return str(self._address) if self._address else None

    def config(self) -> dict[str, Any]:
        """The JSON-able dict that fully describes this resource."""
        return {
            "name": self.rns_address,
            "resource_type": self.resource_type,
            "resource_subtype": type(self).__name__,
        }

    @classmethod
    def from_config(cls: type[R], config: dict[str, Any]) -> R:
        """Rebuild a resource from ``config()`` output (fields go to ``__init__``)."""
        fields = {k: v for k, v in config.items() if k not in _TYPE_KEYS}
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            unknown = sorted(k for k in fields if k not in params)
            if unknown:
                warnings.warn(
                    f"Ignoring config fields {unknown} that {cls.__name__} does not take "
                    f"(saved at {config.get('name')!r}, perhaps by a newer Runhouse).",
                    stacklevel=2,
                )
                fields = {k: v for k, v in fields.items() if k not in unknown}
        return cls(**fields)

    @classmethod
    def from_name(cls: type[R], name: str) -> R:
        """Load the resource saved under ``name``; it must be this class or a subclass."""
        address = resource_address(name)
        resource = build(store_for(address).read(address), address)
        if not isinstance(resource, cls):
            raise ResourceTypeMismatchError(str(address), type(resource).__name__, cls.__name__)
        return resource

    def save(
        self: R,
        name: str | None = None,
        overwrite: bool = True,
        expected_version: int | None = None,
    ) -> R:
        """Store the config under its address as a new version and return ``self``. With
        ``expected_version=N`` only if the saved version is still N (0: none saved yet),
        else ``VersionConflictError``."""
        if name is not None:
            self.name = name
        address = self._require_address("save", hint="pass one: save(name='my_resource')")
        config = self.config()
        _check_json(config, type(self).__name__)
        _warn_of_credentials(config, str(address))
        store_for(address).append(
            address, config, author(), overwrite=overwrite, expected_version=expected_version
        )
        return self

    def delete_configs(self) -> None:
        """Delete the saved config and all its versions (no-op if nothing is saved)."""
        address = self._require_address("delete_configs")
        store_for(address).delete(address)

    def history(self, limit: int | None = None) -> list[ResourceVersion]:
        """The saved versions, newest first: version, timestamp, author, config."""
        address = self._require_address("history")
        return store_for(address).history(address, limit)

    def versions(self) -> list[ResourceVersion]:
        """All saved versions, newest first (``history()`` without a limit)."""
        return self.history()

    def rollback(self: R, version: int) -> R:
        """Make ``version`` current again as a new version; ``self`` takes on its config."""
        address = self._require_address("rollback")
        store = store_for(address)
        earlier = store.version(address, version)
        restored = build(earlier.config, address)
        if type(restored) is not type(self):
            raise ResourceTypeMismatchError(
                str(address), type(restored).__name__, type(self).__name__, version
            )
        store.append(address, earlier.config, author())
        self.__dict__.update(restored.__dict__)
        return self

    def share(self, users_or_groups: str | Sequence[str], access_level: str = "read") -> list[str]:
        """Give users (``"bo"``) or groups (``"/acme/ml"``) ``"read"``, ``"write"`` or
        ``"deny"`` access (deny beats every grant); returns who was added. Needs Den."""
        store, address = self._on_den("share")
        principals = [users_or_groups] if isinstance(users_or_groups, str) else users_or_groups
        return store.share(address, list(principals), access_level)

    def revoke(self, users: str | Sequence[str] | None = None) -> list[str]:
        """Take back the grants of ``users`` (every grant when ``None``); returns whose."""
        store, address = self._on_den("revoke")
        principals = [users] if isinstance(users, str) else users
        return store.revoke(address, list(principals) if principals is not None else None)

    @property
    def visibility(self) -> str:
        """Who may read it without a grant: ``"private"``, ``"unlisted"`` (anyone logged in
        who knows the address) or ``"public"`` (anyone). Needs Den."""
        store, address = self._on_den("read the visibility of")
        return store.visibility(address)

    @visibility.setter
    def visibility(self, value: str) -> None:
        store, address = self._on_den("set the visibility of")
        store.set_visibility(address, value)

    def _on_den(self, action: str) -> tuple[DenStore, Address]:
        address = self._require_address(action)
        store = store_for(address)
        if not isinstance(store, DenStore):
            raise StoreUnavailableError(
                str(address),
                f"cannot {action} it: sharing needs the metadata server (Den), and it is in "
                "the local store. Log in (`runhouse login --den-url URL --token TOKEN`) and "
                f"save it under '@/{address.name}' or a group's folder ('/team/{address.name}').",
            )
        return store, address

    def _require_address(self, action: str, hint: str = "") -> Address:
        if self._address is None:
            raise ValueError(
                f"Cannot {action} an unnamed {type(self).__name__}; it needs a name. {hint}".strip()
            )
        return self._address

    @staticmethod
    def ref(sub: Resource | None) -> str | dict[str, Any] | None:
        """How a sub-resource appears in a config: its address if it is saved (loading
        follows its newest version), else inline (a name alone could not be loaded)."""
        if sub is None:
            return None
        return str(sub._address) if sub._loadable_by_address() else sub.config()

    def _loadable_by_address(self) -> bool:
        """Whether loading this resource's address gives it back (it is saved)."""
        return self._address is not None and store_for(self._address).exists(self._address)

    @staticmethod
    def deref(value: Resource | str | dict[str, Any] | None) -> Resource | None:
        """The inverse of ``ref``: load an address, rebuild an inline config."""
        if value is None or isinstance(value, Resource):
            return value
        if isinstance(value, str):
            return load(value)
        return build(value, None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.rns_address!r})"


register(Resource)


def build(config: dict[str, Any], address: Address | None) -> Resource:
    """Instantiate the right class for ``config`` and place it at ``address``."""
    cls = class_for(config, str(address) if address else None)
    resource = cls.from_config(config)
    if address is not None:
        resource._address = address
    return resource


def load(name: str, instantiate: bool = True) -> Any:
    """The resource saved under ``name`` (as its own class), or its config dict."""
    address = resource_address(name)
    config = store_for(address).read(address)
    return build(config, address) if instantiate else config


def author() -> str:
    """Who a new version is recorded as: the ``username`` setting, else the OS user."""
    configured = configs.get("username")
    if configured:
        return str(configured)
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        return "unknown"


def credential_names(config: Any) -> list[str]:
    """Names of env variables in ``config``, its sub-resources' included (an env inlined in
    a function's config, say), that look like credentials (KEY, TOKEN, SECRET, PASSWORD in
    any case); none for a ``.env`` path, which is saved as the path."""
    found: set[str] = set()
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            variables = value.get("env_vars")
            if isinstance(variables, dict):
                found.update(k for k in variables if looks_like_credential(k))
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return sorted(found)


def _warn_of_credentials(config: dict[str, Any], address: str) -> None:
    risky = credential_names(config)
    if risky:
        log.warning(
            "%s is saved with env_vars that look like credentials (%s): their values are "
            "written in clear in its saved config. Give env_vars the path of a .env file "
            "instead (env_vars='.env'): only the path is saved, and the values are read when "
            "the env is set up. (rh.secret is coming for this.)",
            address,
            ", ".join(risky),
        )


def _check_json(value: Any, where: str) -> None:
    # Walk the config so the error names the field, not just "Object of type X".
    if value is None or isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-string key {key!r}; config keys must be str.")
            _check_json(item, f"{where}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}, which cannot be saved in a JSON config; "
        "use str, int, float, bool, None, lists and dicts."
    )
