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
     └── StoreUnavailableError                           the store an address needs is not set up

Built-in bases are there so that callers can catch what they already know (``KeyError`` for a
missing name); the structured fields are there so that tools do not parse messages.
"""

from __future__ import annotations

from pathlib import Path


class RunhouseError(Exception):
    """Base class of every error Runhouse raises on purpose."""


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
