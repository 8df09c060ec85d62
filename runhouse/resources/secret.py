"""``Secret`` and ``ProviderSecret``: credentials as resources that never show their values.

    >>> s = rh.provider_secret("aws")          # read from ~/.aws/credentials or AWS_* now
    >>> s.save()                                # config to its store; values to ~/.rh/secrets
    ...                                         # (a ~/ name) or sealed in Den (a Den name)
    >>> s.to(cluster)                           # ~/.aws/credentials on the cluster, mode 600
    >>> k = rh.secret(name="openai", values={"OPENAI_API_KEY": "..."}).save()
    >>> k.to(cluster, env="train")              # a variable in env train's worker only
    >>> rh.secret(name="openai").values         # the one place values show

A secret's config (and so ``runhouse ls``, ``history``, the saved files) holds its name,
provider, path and variable names; its values go to a backend (``runhouse/secrets/backends``)
under the same version number as the config. ``repr``, ``str`` and the errors raised here
never hold a value. Values reach a cluster inside the daemon connection only: written by the
daemon's worker (files) or set in a worker's ``os.environ`` (variables), never on a command
line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runhouse.data.cluster_files import ClusterFiles
from runhouse.exceptions import ResourceNotFoundError, ResourceTypeMismatchError
from runhouse.names.address import RESERVED
from runhouse.names.folders import resource_address
from runhouse.names.resolver import exists, store_for
from runhouse.resources.env import Env
from runhouse.resources.resource import Resource, author, build
from runhouse.secrets.backends.base import backend_for
from runhouse.secrets.base import Provider, shown_path
from runhouse.secrets.formats import UnreadableFile
from runhouse.secrets.registry import is_provider, known, provider_class

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

S = TypeVar("S", bound="Secret")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Secret(Resource):
    """Credentials as key/value pairs; their values show only through ``.values``."""

    resource_type = "secret"

    def __init__(self, name: str | None = None, values: Mapping[str, str] | None = None) -> None:
        super().__init__(name=name)
        # None: kept by the backend, fetched on first use (a loaded secret)
        self._values = _checked(values) if values is not None else None

    @property
    def values(self) -> dict[str, str]:
        """The values (a copy); fetched from where they are kept if this secret was loaded."""
        if self._values is None:
            self._values = self._fetch()
        return dict(self._values)

    @values.setter
    def values(self, values: Mapping[str, str]) -> None:
        self._values = _checked(values)

    def keys(self) -> list[str]:
        """The names of the values (never the values)."""
        return sorted(self.values)

    def env_vars(self) -> dict[str, str]:
        """The environment variables this secret sets in an env: its values, by key."""
        return self.values

    def files(self) -> dict[str, tuple[bytes, int]]:
        """The files it writes on a cluster (``{path from home: (contents, mode)}``)."""
        return {}

    def merge_file(self, existing: bytes, rendered: bytes) -> bytes:
        """What to write over a file already on the cluster (see ``FileFormat.merge``)."""
        return rendered

    def _fetch(self) -> dict[str, str]:
        address = self._require_address(
            "read the values of", hint="give it values: rh.secret(values={...})"
        )
        current = store_for(address).history(address, 1)[0].version
        return backend_for(address).get(address, current)

    # -- saving: the config to its store, the values to the backend, one version number ---

    def save(
        self: S,
        name: str | None = None,
        overwrite: bool = True,
        expected_version: int | None = None,
    ) -> S:
        """Store the config as a new version and the values under the same version number;
        returns ``self`` (``expected_version``: as for every resource)."""
        values = self.values  # before a new name: a loaded secret's come from its old one
        if name is not None:
            self.name = name
        address = self._require_address("save", hint="pass one: save(name='my_secret')")
        saved = store_for(address).append(
            address,
            self.config(),
            author(),
            overwrite=overwrite,
            expected_version=expected_version,
        )
        backend_for(address).put(address, saved.version, values)
        return self

    def rollback(self: S, version: int) -> S:
        """Make ``version`` current again (config and values) as a new version."""
        address = self._require_address("rollback")
        store, backend = store_for(address), backend_for(address)
        earlier = store.version(address, version)
        restored = build(earlier.config, address)
        if type(restored) is not type(self):
            raise ResourceTypeMismatchError(
                str(address), type(restored).__name__, type(self).__name__, version
            )
        values = backend.get(address, version)  # first: a version without values changes nothing
        saved = store.append(address, earlier.config, author())
        backend.put(address, saved.version, values)
        self.__dict__.update(restored.__dict__)
        self._values = values
        return self

    def delete_configs(self) -> None:
        """Delete the saved config, its versions and every version's values."""
        address = self._require_address("delete_configs")
        store_for(address).delete(address)
        backend_for(address).delete(address)

    # -- clusters ----------------------------------------------------------------------

    def to(self: S, system: Cluster | str, env: Env | str | None = None) -> S:
        """Send the secret to a cluster: with ``env``, as variables in that env's worker only;
        without, its provider's files (mode 600, in the daemon user's home), or for a secret
        that has no files, as variables in the base env. Returns ``self``."""
        from runhouse.resources.cluster import as_cluster  # that module imports this one

        cluster = as_cluster(system)
        files = self.files() if env is None else {}
        if files:
            write_files(cluster, files, self.merge_file)
            return self
        variables = self.env_vars()
        if not variables:
            raise ValueError(
                f"{self!r} sets no environment variables (its provider keeps credentials in "
                "files only): send it without env= to write its files on the cluster"
            )
        cluster.put_env_secrets(cluster.ensure_env(env), _checked_names(variables, self))
        return self

    def give_to(self, cluster: Cluster, env_name: str) -> None:
        """Make the secret available to env ``env_name``'s code (``rh.env(secrets=[...])``):
        its variables in that env's worker, or its files if it has no variables (ssh, gcp)."""
        variables = self.env_vars()
        if variables:
            cluster.put_env_secrets(env_name, _checked_names(variables, self))
        else:
            write_files(cluster, self.files(), self.merge_file)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.rns_address!r})"


class ProviderSecret(Secret):
    """A provider's credentials (aws, gcp, ssh, openai, ...): read from the provider's own
    files or variables, written back in its own layout."""

    def __init__(
        self,
        name: str | None = None,
        provider: str = "",
        values: Mapping[str, str] | None = None,
        path: str | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider_class(provider).name
        self.path = shown_path(path) if path is not None else None
        self.env_var_names = dict(env_vars or {})
        self._provider()  # checks path and env_vars against the provider now
        super().__init__(name=name, values=values)
        self._source: str | None = None

    def _provider(self) -> Provider:
        return provider_class(self.provider)(self.path, self.env_var_names)

    def config(self) -> dict[str, Any]:
        """The secret's config: provider, path and variable names, never values."""
        return {
            **super().config(),
            "env_vars": dict(self.env_var_names),
            "path": self.path,
            "provider": self.provider,
        }

    def read_local(self, home: Path | None = None) -> ProviderSecret:
        """Take the credentials on this machine as this secret's values (see
        ``Provider.read_local``); returns ``self``."""
        provider = self._provider()
        found = provider.read_local(home)
        self._values = found.values
        used = [provider.names[key] for key in found.values if key in provider.names]
        self._source = found.path or f"environment variables {', '.join(used)}"
        defaults = provider.file.paths if provider.file is not None else ()
        if self.path is None and found.path in defaults[1:]:
            self.path = found.path  # which of its defaults (id_rsa, not id_ed25519) matters
        return self

    @property
    def source(self) -> str | None:
        """Where ``read_local`` found the values (a file, or variables' names), if it did."""
        return self._source

    def env_vars(self) -> dict[str, str]:
        """The provider's environment variables for these values (``{NAME: value}``)."""
        return self._provider().env_vars(self.values)

    def files(self) -> dict[str, tuple[bytes, int]]:
        """The provider's files for these values (``{path from home: (contents, mode)}``)."""
        return self._provider().write_files(self.values)

    def merge_file(self, existing: bytes, rendered: bytes) -> bytes:
        """The provider's file over one already there: other profiles or keys it holds stay."""
        file = self._provider().file
        return file.merge(existing, rendered) if file is not None else rendered

    def __repr__(self) -> str:
        return f"ProviderSecret(name={self.rns_address!r}, provider={self.provider!r})"


def write_files(
    cluster: Cluster,
    files: Mapping[str, tuple[bytes, int]],
    merge: Callable[[bytes, bytes], bytes] | None = None,
) -> list[str]:
    """Write files on ``cluster`` through its daemon (paths from the daemon user's home, or
    absolute), each with its mode; a file already there is written as ``merge(existing,
    new)`` says (other profiles in it stay). Returns their absolute paths there."""
    disk = ClusterFiles(cluster)
    placed = []
    for path, (data, mode) in files.items():
        where = path if path.startswith("/") else f"~/{path}"
        if merge is not None and disk.exists(where):
            existing = disk.read_bytes(where)  # through the daemon connection, like the write
            try:
                data = merge(existing, data) if existing != data else data
            except UnreadableFile as exc:
                raise ValueError(
                    f"{disk.url(where)} exists and is not in the {exc} format this secret "
                    "writes; nothing was written. Move it aside, then send the secret again."
                ) from None
        placed.append(str(disk.call("write_private", where, data, mode)))
    return placed


def env_secrets(names: Sequence[str]) -> list[Secret]:
    """The secrets an env names (``rh.env(secrets=[...])``): each the secret saved under the
    name, or else the credentials on this machine of the provider so named."""
    found: list[Secret] = []
    for name in names:
        saved = default_name(name) if is_provider(name) else name
        if exists(saved):
            found.append(Secret.from_name(saved))
        elif is_provider(name):
            found.append(provider_secret(name))
        else:
            raise ResourceNotFoundError(
                str(resource_address(name)),
                f"the saved resources and the secret providers ({', '.join(known())})",
                f"Save it first: rh.secret(name={name!r}, values={{...}}).save().",
            )
    return found


def secret(
    name: str | None = None,
    values: Mapping[str, str] | None = None,
    provider: str | None = None,
) -> Secret:
    """A secret of your own key/values (``provider``: a provider's, as ``provider_secret``);
    given only ``name``, the one saved under it."""
    if provider is not None:
        return provider_secret(provider, values=values, name=name)
    if values is None:
        if name is None:
            raise ValueError(
                "give values= (a dict of names to strings), or name= to load a saved secret"
            )
        return Secret.from_name(name)
    return Secret(name, values)


def provider_secret(
    provider: str | None = None,
    values: Mapping[str, str] | None = None,
    path: str | None = None,
    env_vars: Mapping[str, str] | None = None,
    name: str | None = None,
) -> ProviderSecret:
    """A provider's credentials, named after the provider unless ``name`` is given: ``values``
    if given, else read now from the provider's files (``path``: another file) or variables
    (``env_vars``: other names, by key). Given only ``name``, the one saved under it."""
    if provider is None:
        if name is None:
            raise ValueError(f"give a provider (one of {', '.join(known())}), or name= to load")
        return ProviderSecret.from_name(name)
    made = ProviderSecret(name or default_name(provider), provider, values, path, env_vars)
    return made if values is not None else made.read_local()


def default_name(provider: str) -> str:
    """The name a provider's secret gets unless given one: the provider's (``azure``, which
    names a storage system, becomes ``azure_secret``)."""
    name = provider_class(provider).name
    return f"{name}_secret" if name in RESERVED else name


def _checked(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` as a plain dict of strings; errors name keys, never values."""
    if not isinstance(values, Mapping):
        raise TypeError(
            f"a secret's values must be a dict of names to strings, not a {type(values).__name__}"
        )
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"a secret's keys must be non-empty strings, not {key!r}")
        if not isinstance(value, str):
            raise TypeError(
                f"a secret's values must be strings; {key!r} is a {type(value).__name__}"
            )
    return dict(values)


def _checked_names(variables: dict[str, str], secret: Secret) -> dict[str, str]:
    """``variables``, if every name can be an environment variable's."""
    bad = sorted(name for name in variables if not _VARIABLE.match(name))
    if bad:
        raise ValueError(
            f"{secret!r} cannot set {', '.join(map(repr, bad))} as environment variables: "
            "names are letters, digits and '_', not starting with a digit"
        )
    return variables
