"""What a cluster's daemon holds and runs: objects by key, envs, calls and runs.

``Cluster`` inherits these; they reach the daemon through ``self._with_client``.

    >>> c.put("answer", 42); c.get("answer")
    42
    >>> c.keys(), c.cancel(run_key)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from runhouse.client import workdir
from runhouse.client.connection import DaemonConnection
from runhouse.client.hosts import DaemonHost
from runhouse.client.http import ClusterClient
from runhouse.client.invoke import CallOptions
from runhouse.client.shipping import ship
from runhouse.exceptions import (
    DaemonError,
    ObjectLostError,
    ObjectNotFoundError,
    ResourceNotFoundError,
)
from runhouse.fileio import atomic_write
from runhouse.resources import remote_call
from runhouse.resources.env import Env, EnvRef, code_root
from runhouse.resources.secret import env_secrets
from runhouse.wire import batch, errors, versions
from runhouse.wire.serialization import dumps, loads

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster

log = logging.getLogger("runhouse")
T = TypeVar("T")
BASE_ENV = "base"


class ClusterCalls:
    """Objects, envs, calls and runs on a cluster's daemon (a part of ``Cluster``)."""

    _connection: DaemonConnection

    if TYPE_CHECKING:

        @property
        def daemon_host(self) -> DaemonHost:
            """Where the daemon runs (``Cluster`` says how)."""

    # -- objects -----------------------------------------------------------------------

    def put(self, key: str, obj: Any, env: Env | str | None = None, unique: bool = False) -> str:
        """Store ``obj`` under ``key`` in ``env``'s worker (default: the base env); returns
        the key (``unique``: if another env holds ``key``, this one gets ``key@env``)."""
        env_name = self.ensure_env(env)
        body = ship(obj, f"object {key!r}")
        return _placed(
            self._with_client(
                lambda c: c.send_object(key, body, env_name, resource=False, unique=unique)
            )
        )

    def put_resource(
        self, key: str, obj: Any, env: Env | str | None = None, unique: bool = False
    ) -> str:
        """Store a function or class; it survives a worker restart (it is sent again).
        Returns its key (``unique``: as for ``put``).

        The env's working dir (default: the project root) goes on the worker's import path,
        and code importable from it is sent by reference.
        """
        env_name = self.ensure_env(env)
        self._check_versions(env_name)
        root = code_root(env if isinstance(env, Env) else None)
        synced = self._sync_working_dir(root) if root is not None else None
        body = ship(obj, f"{key!r}", root if synced is not None else None)
        return _placed(
            self._with_client(
                lambda c: c.send_object(key, body, env_name, True, path=synced, unique=unique)
            )
        )

    def _sync_working_dir(self, root: Path) -> str | None:
        """Mirror the working dir where this cluster's workers import it from."""
        try:
            return self.daemon_host.sync_workdir(root)
        except workdir.WorkdirTooLarge as exc:
            log.warning("Not syncing the working dir (%s); code will be sent by value.", exc)
            return None

    def _check_versions(self, env_name: str) -> None:
        """Once per env and daemon: the env must run versions this client can talk to."""
        base_url = self._with_client(lambda c: c.base_url)
        if (base_url, env_name) in _checked_envs:
            return
        params = {"env": env_name}
        remote = self._with_client(lambda c: c.json("GET", "/_rh/versions", params=params))
        versions.check(versions.local_versions(), remote, env_name)
        _checked_envs.add((base_url, env_name))

    def get(self, key: str, default: Any = None) -> Any:
        """The object under ``key``, or ``default`` if there is none (``default=KeyError``:
        raise ``rh.ObjectNotFoundError``, a ``KeyError``, as the original did)."""
        try:
            return self._with_client(lambda c: c.value("GET", f"/_rh/objects/{key}", key))
        except ObjectNotFoundError:
            if default is KeyError:
                raise
            return default

    def rename(self, old_key: str, new_key: str) -> None:
        """Give the object under ``old_key`` the key ``new_key`` (which must be free)."""
        params = {"to": new_key}
        self._with_client(lambda c: c.json("POST", f"/_rh/rename/{old_key}", params=params))
        self._with_client(lambda c: c.sent.rename(old_key, new_key))

    def keys(self, env: Env | str | None = None) -> list[str]:
        """Keys of every object on the cluster, or of one env's."""
        params = {"env": _env_name(env)} if env is not None else None
        return list(self._with_client(lambda c: c.json("GET", "/_rh/keys", params=params)))

    def delete(self, keys: str | Iterable[str]) -> None:
        """Delete one key or several; ``KeyError`` for a key that is not there."""
        for key in [keys] if isinstance(keys, str) else list(keys):
            path = f"/_rh/objects/{key}"
            self._with_client(lambda c, path=path: c.json("DELETE", path))  # type: ignore[misc]
            self._with_client(lambda c, key=key: c.sent.forget(key))  # type: ignore[misc]

    def clear(self) -> None:
        """Delete every object on the cluster."""
        self._with_client(lambda c: c.json("POST", "/_rh/clear"))
        self._with_client(lambda c: c.sent.forget_all())

    def cancel(self, key: str, force: bool = False) -> list[str]:
        """Cancel a run (by the key ``.run()`` returned) or every running call of an object;
        returns the run keys cancelled. Waiting on a cancelled run raises
        ``rh.CallCancelledError`` at once. ``force=True`` also ends the worker that ran it
        (a call stuck in C code stops for sure) and starts a fresh one: objects that are not
        functions or classes go with the old one, and a warning names them."""
        return self._cancel(f"/_rh/cancel/{key}", force)

    def cancel_all(self, force: bool = False) -> list[str]:
        """Cancel every running call on the cluster (``force``: as for ``cancel``)."""
        return self._cancel("/_rh/cancel", force)

    def _cancel(self, path: str, force: bool) -> list[str]:
        params = {"force": "1"} if force else None
        answer = self._with_client(lambda c: c.json("POST", path, params=params))
        if answer.get("lost"):
            log.warning(
                "Cancelling with force=True replaced a worker; these objects went with it: %s",
                ", ".join(answer["lost"]),
            )
        return list(answer["cancelled"])

    def ensure_env(self, env: Env | str | None) -> str:
        """Declare ``env`` on the daemon (its variables) and return its name there. An env
        given by name is the cluster's env of that name, or else the one saved under it."""
        if env is None:
            return BASE_ENV
        if isinstance(env, (str, EnvRef)):
            return self._existing_env(EnvRef(env) if isinstance(env, str) else env)
        name = _env_name(env)
        secrets = env_secrets(env.secrets)  # first: a missing secret fails before any build
        body = {
            "conda": getattr(env, "conda_env", None),
            "env_vars": env.resolved_env_vars(),
            "reqs": self.daemon_host.place_requirements(env.resolved_reqs()),
            "setup_cmds": list(env.setup_cmds),
            "compute": dict(env.compute),
            "replicas": env.replicas,
        }
        self._with_client(lambda c: c.declare_env(name, body))
        for secret in secrets:
            secret.give_to(cast("Cluster", self), name)
        return name

    def put_env_secrets(self, env_name: str, variables: dict[str, str]) -> None:
        """Set secret variables in env ``env_name``'s worker (declared already), now and in
        every worker it starts later. Unlike an env's ``env_vars`` they travel in a request's
        body only and the daemon keeps them in memory only: no config, log or command line
        holds them (a daemon restarted under this client gets them again)."""
        body = {"env_vars": variables}

        def put(client: ClusterClient) -> None:
            client.json("PUT", f"/_rh/secrets/{env_name}", body)
            known = client.sent.secrets.setdefault(env_name, {})
            known.update(variables)  # sent again to a restarted daemon

        self._with_client(put)

    def _existing_env(self, ref: EnvRef) -> str:
        name = _env_name(ref)
        if name == BASE_ENV or self._with_client(lambda c: c.env_info(name)) is not None:
            return name
        saved = ref.saved()
        if saved is not None:
            return self.ensure_env(saved)
        raise ResourceNotFoundError(
            str(ref.rns_address),
            f"the envs of {self} and the saved resources",
            f"Create it first: rh.env(name={name!r}, reqs=[...]).to(cluster), or pass the "
            "Env object itself.",
        )

    # -- calls -------------------------------------------------------------------------

    def request_call(
        self,
        key: str,
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        stream_logs: bool = True,
        timeout: float | None = None,
        **params: str,
    ) -> Any:
        """Call ``key.method(*args, **kwargs)`` on the cluster and return its result; past
        ``timeout`` seconds it is cancelled there and ``rh.CallTimeoutError`` is raised."""
        payload = dumps((args, kwargs or {}), f"the arguments of {key}.{method}")
        params = {"logs": "1" if stream_logs else "0", **params}
        return self._connection.call(key, method, payload, params, stream_logs, timeout)

    def call(
        self,
        key: str,
        method: str,
        *args: Any,
        stream_logs: bool = True,
        run_name: str | None = None,
        remote: bool = False,
        run_async: bool = False,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``key.method(*args, **kwargs)`` on the cluster: ``remote=True`` keeps the
        result there and returns an ObjectRef, ``run_name`` names the run (and keeps its
        result under that name), ``run_async=True`` returns an awaitable, ``timeout`` bounds
        the wait (seconds). A generator's items come back as an iterator.

            >>> c.call("counter", "increment", 2)
        """
        options = CallOptions(stream_logs, run_name, run_async, remote)
        cluster = cast("Cluster", self)  # this class is a part of Cluster
        return remote_call.call(cluster, key, method, args, kwargs, "sync", options, timeout)

    def call_map(
        self,
        key: str,
        method: str,
        items: list[tuple[tuple[Any, ...], dict[str, Any]]],
        stream_logs: bool = True,
        **params: str,
    ) -> list[Any]:
        """Call ``key.method`` once per (args, kwargs), concurrently on the cluster."""
        what = f"the arguments of {key}.{method}"
        # Each item on its own: the daemon deals them out to the env's replicas as they are.
        payload = batch.pack([dumps(item, f"{what} (item {i})") for i, item in enumerate(items)])
        params = {"logs": "1" if stream_logs else "0", "op": "map", **params}
        results = f"the results of {key}.{method}"

        def decode(data: bytes, what: str) -> list[Any]:
            values = [
                loads(part, f"{results} (item {i})") for i, part in enumerate(batch.unpack(data))
            ]
            # With errors=return, a failed item is its packed error: rebuilt here, as a call's.
            return [errors.unpack(v) if isinstance(v, errors.Packed) else v for v in values]

        return self._connection.call(key, method, payload, params, stream_logs, decode=decode)

    def run_detached(
        self,
        key: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_key: str,
        **params: str,
    ) -> str:
        """Start a call that outlives this client; returns its run key."""
        payload = dumps((args, kwargs), f"the arguments of {key}.{method}")
        params = {**params, "detach": "1", "run_key": run_key}
        call = f"{key}.{method}"
        return self._connection.at_most_once(
            call, run_key, lambda c: c.start(key, method, payload, params)
        )

    def result(self, run_key: str) -> Any:
        """Wait for a run started with ``run_detached`` and return its result."""

        def wait(c: ClusterClient) -> Any:
            try:
                return c.value("GET", f"/_rh/runs/{run_key}", run_key)
            except DaemonError as exc:
                missing = c.missing(run_key) if exc.status == 404 else None
                if isinstance(missing, ObjectLostError):  # the daemon restarted since
                    raise missing from None
                raise

        return self._with_client(wait)

    def endpoint(self) -> str:
        """The daemon's base URL."""
        return self._with_client(lambda c: c.base_url)

    def token(self) -> str | None:
        """The daemon's bearer token (for plain HTTP clients such as curl)."""
        return self._with_client(lambda c: c.token)

    def certificate_file(self) -> Path | None:
        """The daemon's TLS certificate saved as a file (for curl's ``--cacert``), or None."""
        pem = self._with_client(lambda c: c.certificate)
        if pem is None:
            return None
        digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
        path = Path.home() / ".rh" / "certs" / f"{digest}.pem"
        if not path.exists():
            atomic_write(path, pem)
        return path

    # -- connection --------------------------------------------------------------------

    def _with_client(self, action: Callable[[ClusterClient], T]) -> T:
        return self._connection.with_client(action)

    def _connected(self, autostart: bool) -> ClusterClient:
        return self._connection.connected(autostart)


def _placed(answer: dict[str, Any]) -> str:
    """The key the daemon stored an object under; says so when it took the key from another
    env (an explicit name is the user's choice: the object moves)."""
    if answer.get("moved_from"):
        log.warning(
            "%r was in env %r; it now lives in env %r (the name was given explicitly).",
            answer["key"],
            answer["moved_from"],
            answer["env"],
        )
    return str(answer["key"])


_checked_envs: set[tuple[str, str]] = set()  # (daemon URL, env) whose versions agree


def _env_name(env: Env | str | None) -> str:
    if env is None:
        return BASE_ENV
    if isinstance(env, str):
        return env
    return env.name or f"env-{env.content_hash()[:12]}"
