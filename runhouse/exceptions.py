"""Every error Runhouse raises on purpose, in one tree.

    RunhouseError
     ├── InvalidNameError            (also ValueError)   a name or address that is not allowed
     ├── ResourceNotFoundError       (also KeyError)     nothing saved at an address
     ├── ResourceExistsError         (also FileExistsError)  save(overwrite=False) on a taken name
     ├── VersionNotFoundError        (also KeyError)     history has no such version
     ├── ConfigError                 (also ValueError)   a config file or value that cannot be used
     │    └── CorruptConfigError                         a file that does not parse (file, line)
     ├── UnknownResourceTypeError    (also ValueError)   no class claims a config's resource_type
     ├── ResourceTypeMismatchError   (also TypeError)    Cls.from_name on another class's config
     ├── StoreUnavailableError                           the store an address needs is not set up
     ├── VersionConflictError                            save(expected_version=N) found another
     ├── PermissionDeniedError       (also PermissionError)  Den refused a write (no access)
     ├── DenError                                        Den answered an error (status, code)
     │    └── DenAuthError                               Den refused the token (401)
     ├── SerializationError          (also TypeError)    a value that cannot be pickled or rebuilt
     ├── ObjectNotFoundError         (also KeyError)     no object under a key on a cluster
     │    └── ObjectLostError                            the daemon restarted and lost its state
     ├── RemoteError                                     a remote exception not rebuildable here
     ├── CallCancelledError                              the call was cancelled (c.cancel(key))
     ├── CallTimeoutError            (also TimeoutError) a call outlived its timeout (cancelled)
     ├── WorkerDiedError                                 the env's worker died during the call
     ├── PlacementError              (also ValueError)   no node can hold an env's worker (says why)
     ├── EngineError                                     the engine (Ray) cannot start or launch
     ├── EnvInstallError                                 building an env failed (command, output)
     ├── VersionMismatchError                            client and env disagree on python etc.
     │    └── RayVersionMismatchError                    a cluster's hosts run different Rays
     ├── EngineMismatchError                             the running daemon has another engine
     ├── CommandError                                    a command run for the user failed (rc)
     ├── SSHError                                        ssh could not connect or log in (says why)
     ├── StorageError                                    a storage system refused (system, path)
     ├── UnknownProviderError        (also ValueError)   no secret provider of that name (known)
     ├── CredentialsNotFoundError    (also FileNotFoundError)  no local credentials (says where)
     ├── SecretValuesMissingError    (also KeyError)     a secret's values are not on this machine
     ├── DenServerError                                  Den cannot start (database, folder, port)
     └── DaemonError                                     the daemon is unreachable or refused
          ├── AuthError                                  missing (401) or wrong (403) token
          ├── NodeJoinError                              a host did not join the head's Ray
          └── CallInterruptedError                       a call lost mid-way; not sent again

Built-in bases are there so that callers can catch what they already know (``KeyError`` for a
missing name); the structured fields are there so that tools do not parse messages.
"""

from __future__ import annotations

from pathlib import Path


class RunhouseError(Exception):
    """Base class of every error Runhouse raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuild from args and fields, not __init__: errors cross processes (cluster to
        # client) and most subclasses take structured fields, not a message.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[RunhouseError], args: tuple[object, ...], state: dict) -> RunhouseError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class InvalidNameError(RunhouseError, ValueError):
    """A resource name or address that is not allowed."""

    def __init__(self, name: object, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"Invalid resource name {name!r}: {reason}")


class ResourceNotFoundError(RunhouseError, KeyError):
    """Nothing is saved at this address."""

    def __init__(self, address: str, looked_in: str, hint: str = "") -> None:
        self.address = address
        self.looked_in = looked_in
        message = f"No resource saved at {address!r} (looked in {looked_in})."
        super().__init__(f"{message} {hint}".strip())

    def __str__(self) -> str:
        # KeyError's own __str__ quotes the message; an error meant for people should not.
        return str(self.args[0])


class VersionNotFoundError(RunhouseError, KeyError):
    """The resource exists but has no such version."""

    def __init__(self, address: str, version: int, available: list[int]) -> None:
        self.address = address
        self.version = version
        self.available = available
        span = f"{min(available)}..{max(available)}" if available else "none"
        super().__init__(f"{address!r} has no version {version} (versions: {span}).")

    def __str__(self) -> str:
        return str(self.args[0])


class ResourceExistsError(RunhouseError, FileExistsError):
    """A save with ``overwrite=False`` found the address already taken."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(
            f"A resource is already saved at {address!r}; "
            "pass overwrite=True to save a new version of it, or choose another name."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigError(RunhouseError, ValueError):
    """A config file or value that cannot be used."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(message)


class CorruptConfigError(ConfigError):
    """A config file that does not parse; names the file and the line."""

    def __init__(self, path: Path | str, line: int | None, detail: str) -> None:
        self.line = line
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"Corrupt config file {where}: {detail}. Fix or delete that file.", path)


class UnknownResourceTypeError(RunhouseError, ValueError):
    """A config names a resource_type that no known class handles."""

    def __init__(self, resource_type: object, known: list[str], address: str | None = None) -> None:
        self.resource_type = resource_type
        self.known = known
        self.address = address
        at = f" saved at {address!r}" if address else ""
        super().__init__(
            f"Unknown resource_type {resource_type!r}{at}. Known types: {', '.join(known)}. "
            "If it is a class of your own, import the module that defines it before loading; "
            "if it came from a newer Runhouse, upgrade this one."
        )


class ResourceTypeMismatchError(RunhouseError, TypeError):
    """The config at an address is for another class than the one asked for."""

    def __init__(self, address: str, found: str, expected: str, version: int | None = None) -> None:
        self.address = address
        self.found = found
        self.expected = expected
        which = f"version {version} of {address!r}" if version is not None else repr(address)
        super().__init__(
            f"{which} is saved as {found}, not {expected}; load it with rh.load({address!r})."
        )


class StoreUnavailableError(RunhouseError):
    """The store an address needs is not configured or not installed."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        super().__init__(f"Cannot reach the store for {address!r}: {reason}")


class VersionConflictError(RunhouseError):
    """``save(expected_version=N)`` found the resource at another version (someone saved)."""

    def __init__(self, address: str, expected: int, current: int | None) -> None:
        self.address = address
        self.expected = expected
        self.current = current  # None: nothing is saved there
        now = f"is at version {current}" if current else "has no saved version"
        wanted = "not to exist yet" if expected == 0 else f"to be at version {expected}"
        super().__init__(
            f"{address!r} {now}, but the save expected it {wanted}: someone else saved it "
            "in between. Load it again (rh.load), re-apply your change and save again."
        )


class PermissionDeniedError(RunhouseError, PermissionError):
    """Den refused a change: the caller lacks write (or admin) access to the address."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"Permission denied on {address!r}: {reason}")

    def __str__(self) -> str:
        return str(self.args[0])  # OSError's own __str__ would show the args tuple


class DenError(RunhouseError):
    """Den (the metadata server) answered with an error; carries its status and code."""

    def __init__(self, url: str, status: int, code: str, message: str) -> None:
        self.url = url
        self.status = status
        self.code = code
        super().__init__(f"Den at {url} answered {status} ({code}): {message}")


class DenAuthError(DenError):
    """Den refused the token: missing, unknown, revoked or expired."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(
            url,
            401,
            "unauthenticated",
            f"{message.rstrip('.')}. Log in again with `runhouse login --token TOKEN` "
            "(a Den admin gives out tokens: `runhouse den user add NAME`).",
        )


class SerializationError(RunhouseError, TypeError):
    """A value that cannot be serialized (or rebuilt on the other side)."""

    def __init__(self, what: str, type_name: str | None, detail: str) -> None:
        self.what = what
        self.type_name = type_name
        of = f" (a value of type {type_name})" if type_name else ""
        super().__init__(
            f"Cannot send {what}{of}: {detail}. Send values that pickle (no open files, "
            "locks, sockets or generators), or create them on the cluster."
        )


class ObjectNotFoundError(RunhouseError, KeyError):
    """A cluster holds no object or function under this key."""

    def __init__(self, key: str, existing: list[str]) -> None:
        self.key = key
        self.existing = existing
        shown = ", ".join(repr(k) for k in existing[:20]) or "none"
        more = f" (and {len(existing) - 20} more)" if len(existing) > 20 else ""
        super().__init__(f"No object with key {key!r} on the cluster. Keys there: {shown}{more}.")

    def __str__(self) -> str:
        return str(self.args[0])


class ObjectLostError(ObjectNotFoundError):
    """The daemon restarted, and an object whose state lived only in its memory went with it."""

    def __init__(self, key: str, address: str) -> None:
        self.key = key
        self.existing = []
        self.address = address
        super(ObjectNotFoundError, self).__init__(
            f"The daemon at {address} restarted, and the object {key!r} was lost with it: its "
            "state lived only in the old daemon's memory. Create it again (c.put, construct the "
            "module again, or call .remote() again). Functions and classes are sent again "
            "on their own."
        )


class RemoteError(RunhouseError):
    """A remote exception whose type cannot be rebuilt here; carries its name and traceback."""

    def __init__(self, remote_type: str, message: str, remote_traceback: str) -> None:
        self.remote_type = remote_type
        self.message = message
        self.remote_traceback = remote_traceback
        super().__init__(f"{remote_type}: {message}")


class CallCancelledError(RunhouseError):
    """The call was cancelled before it finished."""

    def __init__(self, run_key: str) -> None:
        self.run_key = run_key
        super().__init__(f"Call {run_key!r} was cancelled.")


class CallTimeoutError(RunhouseError, TimeoutError):
    """A call did not finish within its ``timeout``; it was cancelled on the cluster."""

    def __init__(
        self, call: str, timeout: float, run_key: str | None = None, cancelled: bool | None = None
    ) -> None:
        self.call = call
        self.timeout = timeout
        self.run_key = run_key
        self.cancelled = cancelled  # None: there was nothing to cancel (a plain request)
        message = f"{call} did not finish within its timeout of {timeout:g} s"
        if cancelled is not None:
            message += (
                "; it was cancelled on the cluster"
                if cancelled
                else "; it was not running on the cluster any more when cancelled"
            )
        if run_key is not None:
            message += f" (run key {run_key!r})"
        super().__init__(message + ".")

    def __str__(self) -> str:
        return str(self.args[0])  # OSError's own __str__ would show the args tuple


class WorkerDiedError(RunhouseError):
    """The worker process running the call died; names how it ended."""

    def __init__(self, env: str, pid: int | None, cause: str) -> None:
        self.env = env
        self.pid = pid
        self.cause = cause
        super().__init__(
            f"The worker for env {env!r} (pid {pid}) died during the call: {cause}. "
            "Its objects are lost; the next call to this env starts a fresh worker."
        )


class PlacementError(RunhouseError, ValueError):
    """No node of the cluster can hold an env's workers: what was asked, what the nodes have."""

    def __init__(self, env: str, asked: dict[str, object], why: str) -> None:
        self.env = env
        self.asked = asked
        self.why = why
        super().__init__(f"Env {env!r} asks for compute={asked}, but {why}")


class EngineError(RunhouseError):
    """The daemon's engine could not start, reach its nodes or start a worker there (Ray not
    installed or unreachable, versions that differ between hosts); says what to do."""

    def __init__(self, engine: str, message: str) -> None:
        self.engine = engine
        super().__init__(message)


class DaemonError(RunhouseError):
    """The cluster's daemon could not be reached, or answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AuthError(DaemonError):
    """The daemon refused the request's token (401 missing, 403 wrong), or it is not the
    daemon the client pinned (its TLS certificate differs)."""


class NodeJoinError(DaemonError):
    """A host of the cluster did not join the head's Ray cluster; says why, with its log."""

    def __init__(self, host: str, why: str, log_tail: str) -> None:
        self.host = host
        self.why = why
        self.log_tail = log_tail
        super().__init__(
            f"Host {host} did not join the cluster's Ray head: {why}. The cluster was stopped; "
            f"fix the host, then start it again. Last lines of its Ray log:\n{log_tail}"
        )


_INTERRUPTED = {
    "connection": "The connection to the daemon at {address} broke while {call} ran",
    "died": "The daemon at {address} died during {call}",
    "restarted": "The daemon at {address} restarted during {call}",
}


class CallInterruptedError(DaemonError):
    """A call the daemon may have received was lost on the way back; it was not sent again
    (``cause``: ``connection``, ``died`` or ``restarted``)."""

    def __init__(self, call: str, run_key: str, cause: str, address: str) -> None:
        self.call = call
        self.run_key = run_key
        self.cause = cause
        self.address = address
        what = _INTERRUPTED.get(cause, _INTERRUPTED["connection"]).format(
            address=address, call=call
        )
        super().__init__(
            f"{what} (run key {run_key!r}). It was NOT run again, so it may or may not have "
            "run to the end: check its effects before calling it again."
        )


class EnvInstallError(RunhouseError):
    """Building an env failed; carries the command, its exit code and its output's tail."""

    def __init__(self, env: str, command: str, returncode: int, output: str) -> None:
        self.env = env
        self.command = command
        self.returncode = returncode
        self.output = output
        super().__init__(
            f"Setting up env {env!r} failed: `{command}` exited with code {returncode}. "
            f"Nothing was marked installed; fix it and send the env again.\n{output}"
        )


class VersionMismatchError(RunhouseError):
    """The client and an env's worker run versions that cannot exchange code."""

    def __init__(self, env: str, problems: list[tuple[str, str, str | None]]) -> None:
        self.env = env
        self.problems = problems
        sides = "; ".join(
            f"{what} {mine} here, {theirs} in env {env!r}" for what, mine, theirs in problems
        )
        steps = []
        if any(what == "python" for what, _, _ in problems):
            steps.append("use the same Python minor version on both sides")
        pins = " ".join(f"{what}=={mine}" for what, mine, _ in problems if what != "python")
        if pins:
            steps.append(f"install the same versions in the env (reqs: {pins})")
        super().__init__(f"Version mismatch: {sides}. To fix it, {' and '.join(steps)}.")


class RayVersionMismatchError(VersionMismatchError):
    """The hosts of a cluster run different Ray versions (Ray nodes must all run one)."""

    def __init__(self, versions: dict[str, str | None], head: str) -> None:
        self.versions = versions
        self.head = head
        found = ", ".join(
            f"{host}{' (head)' if host == head else ''} {version or 'no Ray'}"
            for host, version in versions.items()
        )
        wanted = versions[head]
        pip = f"~/.rh/venv/bin/python -m pip install 'ray[default]=={wanted}'"
        RunhouseError.__init__(
            self,
            f"The cluster's hosts run different Ray versions: {found}. Every node of a Ray "
            f"cluster must run the head's version: install it on each host (c.run([{pip!r}], "
            'node="all")), then start the cluster again.',
        )


class EngineMismatchError(RunhouseError):
    """The cluster's daemon already runs with another engine than the cluster asks for."""

    def __init__(self, target: str, asked: str, running: str) -> None:
        self.target = target
        self.asked = asked
        self.running = running
        super().__init__(
            f"The daemon on {target} runs engine {running!r}, but this cluster asks for "
            f"engine {asked!r}. Restart it with this cluster's engine (c.restart_server(); "
            "its objects are lost), or use engine=" + repr(running) + " for this cluster."
        )


class CommandError(RunhouseError):
    """A command Runhouse ran on the user's behalf failed."""

    def __init__(self, command: str, returncode: int, stderr: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"`{command}` exited with code {returncode}: {stderr.strip()[-2000:]}")


class SSHError(RunhouseError):
    """ssh could not connect or log in; the message says which and what to do."""

    def __init__(self, target: str, reason: str, stderr: str) -> None:
        self.target = target
        self.reason = reason
        self.stderr = stderr
        super().__init__(f"Cannot run commands on {target}: {reason}. (ssh said: {stderr[-500:]})")


class StorageError(RunhouseError):
    """A storage system (local disk, a bucket) could not do what was asked; says which
    system and path, why, and what to do."""

    def __init__(self, system: str, path: str, reason: str) -> None:
        self.system = system
        self.path = path
        self.reason = reason
        where = f"{system}://{path}" if path and system not in ("file", "") else path or system
        super().__init__(f"{where}: {reason}")


class UnknownProviderError(RunhouseError, ValueError):
    """No secret provider has this name; ``known`` lists those that do."""

    def __init__(self, provider: object, known: list[str]) -> None:
        self.provider = provider
        self.known = known
        super().__init__(
            f"Unknown secret provider {provider!r}. Known providers: {', '.join(known)}. "
            "For other credentials, use rh.secret(name=..., values={...})."
        )


class CredentialsNotFoundError(RunhouseError, FileNotFoundError):
    """A provider found no credentials on this machine; names every file and variable it
    looked at (and why a file that exists did not do)."""

    def __init__(self, provider: str, files: list[str], env_vars: list[str]) -> None:
        self.provider = provider
        self.files = files
        self.env_vars = env_vars
        looked = [f"files: {', '.join(files)}"] if files else []
        looked += [f"environment variables: {', '.join(env_vars)}"] if env_vars else []
        places = "; ".join(looked) or "nowhere (it has no defaults)"
        super().__init__(
            f"No {provider} credentials found on this machine (looked at {places}). Set them "
            f"up as the {provider} tools do, or pass values: "
            f"rh.provider_secret({provider!r}, values={{...}})."
        )

    def __str__(self) -> str:
        return str(self.args[0])  # OSError's own __str__ would show the args tuple


class SecretValuesMissingError(RunhouseError, KeyError):
    """A saved secret's values are not where its config says they are kept (saved on another
    machine, or by another user; on Den: none for that version, or none the caller may read).
    ``hint`` replaces the default advice, which is about values kept on this machine."""

    def __init__(
        self, address: str, version: int | None, where: str, hint: str | None = None
    ) -> None:
        self.address = address
        self.version = version
        self.where = where
        which = f"version {version} of secret" if version is not None else "secret"
        if hint is None:
            missing = f"are not on this machine (looked in {where})"
            hint = (
                "Secrets saved while logged out keep their values in ~/.rh/secrets of the "
                "machine and user that saved them; save the secret again here (runhouse "
                "secrets import PROVIDER, or rh.secret(...).save()), or log in to Den to keep "
                "values there."
            )
        else:
            missing = f"are not in {where}"
        super().__init__(f"The values of {which} {address!r} {missing}. {hint}")

    def __str__(self) -> str:
        return str(self.args[0])


class DenServerError(RunhouseError):
    """Den (the metadata server) cannot start or serve: its database, data folder or address
    is unusable; the message names which and what to do."""
