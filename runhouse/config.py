"""Settings: one declared table, read from ``RH_*`` variables, then the file, then defaults.

Precedence, highest first:

1. an environment variable ``RH_<KEY>`` (``RH_DEFAULT_FOLDER`` for ``default_folder``),
2. ``~/.rh/config.yaml``,
3. the default declared in ``SETTINGS``.

Keys outside the table may be stored too (any YAML value); their variables are read as text.
A stored falsy value (``0``, ``false``, ``""``) is a value, returned as stored.

    >>> import runhouse as rh
    >>> rh.configs.set("default_folder", "~/team")
    >>> rh.configs.get("default_folder")
    '~/team'

Logged in to Den, ``rh.configs.upload_defaults()`` keeps your stored settings there (not the
Den connection, ``DEN_KEYS``, nor anything that looks like a credential), and
``download_defaults()`` writes back what applies to you: your groups' defaults under your
own (the nearest group wins; your own win over all), leaving the Den connection as it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runhouse.exceptions import ConfigError, CorruptConfigError, DenAuthError
from runhouse.fileio import atomic_write, locked_dir

if TYPE_CHECKING:
    from runhouse.names.den import DenStore

log = logging.getLogger(__name__)

ENV_PREFIX = "RH_"
_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING: Any = object()

Source = Literal["env", "file", "default"]

# What makes this machine this user of this Den: never uploaded as defaults, never
# overwritten by downloaded ones.
DEN_KEYS = ("den_url", "token", "username", "default_folder", "den_ca_cert")

# Names holding these words usually hold credentials: their values should not sit in a
# config (env variables warn; storage options are kept out of saved configs) nor leave this
# machine as defaults.
CREDENTIAL_WORDS = (
    "key",
    "secret",
    "token",
    "password",
    "passwd",
    "connection_string",
    "credential",
)


def looks_like_credential(name: str) -> bool:
    """Whether a variable, option or settings name usually holds a credential (any case)."""
    lowered = name.lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)


@dataclass(frozen=True)
class Setting:
    """One declared setting: its key, type, default and meaning."""

    key: str
    type: type
    default: Any
    doc: str
    secret: bool = False

    @property
    def env_var(self) -> str:
        """The environment variable that overrides this setting."""
        return env_var_for(self.key)


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting(
            "default_folder",
            str,
            "~",
            "Folder that bare names resolve in when no rh.set_folder is active.",
        ),
        Setting(
            "autostart_daemon",
            bool,
            True,
            "Start the local daemon when rh.cluster('local') or rh.here needs it.",
        ),
        Setting("daemon_dir", str, None, "Folder of the local daemon (default ~/.rh/daemon)."),
        Setting("den_url", str, None, "URL of the metadata server (Den); unset means none."),
        Setting(
            "den_ca_cert",
            str,
            None,
            "PEM file of the certificate (or its CA) that an https Den's certificate is "
            "checked against; unset: the system's CAs.",
        ),
        Setting("token", str, None, "Token for the metadata server.", secret=True),
        Setting("username", str, None, "Author recorded on saved versions (default: OS user)."),
        Setting(
            "progress",
            bool,
            True,
            "Show a progress bar (bytes, rate, ETA) on stderr for data transfers that take "
            "over a second, when stderr is a terminal; a call's progress= argument wins.",
        ),
        Setting(
            "worker_idle_timeout",
            int,
            600,
            "Seconds an env's worker may sit idle before the daemon stops it (its functions "
            "and classes come back on the next call); 0 or less: never. Read at daemon start.",
        ),
        Setting(
            "connection_idle_timeout",
            int,
            300,
            "Seconds the daemon keeps an idle keep-alive connection open; 0 or less: no limit. "
            "Read at daemon start.",
        ),
        Setting(
            "request_head_timeout",
            int,
            10,
            "Seconds a client has to send a complete request head (from connecting, or from "
            "its first byte) before the daemon closes the connection. Read at daemon start.",
        ),
        Setting(
            "max_connections",
            int,
            4096,
            "Open connections the daemon accepts at most (also held below its file limit). "
            "Read at daemon start.",
        ),
        Setting(
            "den_auth_ttl",
            int,
            30,
            "Seconds a daemon with den_auth keeps Den's answer for a caller's token (so a "
            "revocation in Den is honoured within it); 0: ask Den on every request. Read at "
            "daemon start.",
        ),
        Setting(
            "secrets_backend",
            str,
            "store",
            "Where secret values are kept: 'store' (with the secret's config: ~/.rh/secrets "
            "for local names, sealed in Den for Den names) or 'vault' (a Vault KV v2 engine).",
        ),
        Setting("vault_url", str, None, "URL of the Vault server (default: VAULT_ADDR)."),
        Setting("vault_mount", str, "secret", "Mount point of Vault's KV v2 engine."),
        Setting("vault_prefix", str, "runhouse", "Path in the KV engine secrets are kept under."),
    )
}


def env_var_for(key: str) -> str:
    """The ``RH_*`` environment variable name for a settings key."""
    return ENV_PREFIX + key.upper()


def _parse_bool(text: str, origin: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{origin}={text!r} is not a boolean; use true/false, yes/no, on/off or 1/0.")


def _parse_number(kind: Callable[[str], Any], text: str, origin: str) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        raise ConfigError(f"{origin}={text!r} is not a valid {kind.__name__}.") from None


def parse_text(key: str, text: str, origin: str) -> Any:
    """Turn text (from a variable or the command line) into the key's declared type."""
    setting = SETTINGS.get(key)
    if setting is None:
        return text
    if setting.type is bool:
        return _parse_bool(text, origin)
    if setting.type in (int, float):
        return _parse_number(setting.type, text, origin)
    return text


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY_PATTERN.match(key):
        raise ConfigError(
            f"Invalid settings key {key!r}: use lowercase letters, digits and underscores, "
            "starting with a letter (it maps to the variable RH_<KEY>)."
        )


def _check_type(key: str, value: Any) -> None:
    setting = SETTINGS.get(key)
    if setting is None or value is None:
        return
    expected = setting.type
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(
            f"Setting {key!r} takes a {expected.__name__}, got {type(value).__name__} {value!r}."
        )


class Configs:
    """Reads and writes ``~/.rh/config.yaml``, with ``RH_*`` variables taking precedence."""

    def __init__(self, path: Path | None = None) -> None:
        self._fixed_path = path
        self._cache_key: tuple[int, int, int] | None = None
        self._cache: dict[str, Any] = {}

    @property
    def path(self) -> Path:
        """The config file (under the current ``$HOME`` unless given explicitly)."""
        return self._fixed_path or Path.home() / ".rh" / "config.yaml"

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The effective value of ``key``: variable, then file, then the default."""
        value, _ = self.lookup(key, default)
        return value

    def lookup(self, key: str, default: Any = _MISSING) -> tuple[Any, Source]:
        """The effective value of ``key`` and where it came from."""
        _check_key(key)
        env_var = env_var_for(key)
        if env_var in os.environ:
            return parse_text(key, os.environ[env_var], env_var), "env"
        stored = self._read()
        if key in stored:
            return stored[key], "file"
        if default is not _MISSING:
            return default, "default"
        setting = SETTINGS.get(key)
        return (setting.default if setting else None), "default"

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` for ``key`` in the config file (an ``RH_*`` variable still wins)."""
        _check_key(key)
        _check_type(key, value)
        with locked_dir(self.path.parent):
            stored = self._read()
            stored[key] = value
            self._write(stored)

    def delete(self, key: str) -> None:
        """Remove ``key`` from the config file; raises ``KeyError`` if it is not stored."""
        _check_key(key)
        with locked_dir(self.path.parent):
            stored = self._read()
            if key not in stored:
                raise KeyError(f"{key!r} is not set in {self.path}")
            del stored[key]
            self._write(stored)

    def update(self, values: dict[str, Any]) -> None:
        """Store several settings at once: all are checked first, so none is stored if one
        cannot be."""
        for key, value in values.items():
            _check_key(key)
            _check_type(key, value)
        with locked_dir(self.path.parent):
            stored = self._read()
            stored.update(values)
            self._write(stored)

    def stored(self) -> dict[str, Any]:
        """A copy of what the config file holds."""
        return dict(self._read())

    def shareable(self) -> dict[str, Any]:
        """The stored settings that may leave this machine as your defaults: all but the
        Den connection (``DEN_KEYS``), secret settings, keys that are not settings keys, and
        anything whose name looks like a credential (inside mappings too)."""
        kept: dict[str, Any] = {}
        for key, value in self._read().items():
            setting = SETTINGS.get(key)
            if key in DEN_KEYS or (setting is not None and setting.secret):
                continue
            if not isinstance(key, str) or not _KEY_PATTERN.match(key):
                continue
            if looks_like_credential(key):
                continue
            value = _without_credentials(value)
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"Setting {key!r} in {self.path} holds {value!r}, which Den cannot keep "
                    "(not a JSON value): quote it, or delete it with `runhouse config delete`.",
                    self.path,
                ) from None
            kept[key] = value
        return kept

    def upload_defaults(self) -> dict[str, Any]:
        """Keep your stored settings on Den as your defaults (replacing the ones there;
        ``shareable`` says which go); returns what Den stored."""
        return self._den("upload_defaults").set_defaults(self.shareable())

    def download_defaults(self) -> dict[str, Any]:
        """Write the defaults that apply to you on Den (yours over your groups') into the
        config file, leaving the Den connection as it is; returns what was written."""
        merged = self._den("download_defaults").defaults(merged=True)
        values: dict[str, Any] = {}
        for key, value in merged.defaults.items():
            if key in DEN_KEYS:
                continue
            try:
                _check_key(key)
                _check_type(key, value)
            except ConfigError as exc:
                # One group's bad value must not keep its members from the rest.
                log.warning(
                    "Skipped the default %s (from %s): %s", key, merged.sources.get(key, "Den"), exc
                )
                continue
            values[key] = value
        self.update(values)
        return values

    def _den(self, what: str) -> DenStore:
        # Imported here, not at the top: the daemon and workers import this module and must
        # not load client code (tests/test_sides.py), and runhouse.names.den imports it.
        from runhouse.names.den import DenStore

        url, token = self.get("den_url"), self.get("token")
        if not url or not token:
            raise DenAuthError(
                url or "Den",
                f"rh.configs.{what}() keeps your defaults on Den, and you are not logged in "
                f"(no {'den_url' if not url else 'token'} in {self.path})",
            )
        return DenStore(url, token)

    def effective(self) -> dict[str, tuple[Any, Source]]:
        """Every declared or stored key with its effective value and source."""
        keys = set(SETTINGS) | set(self._read())
        keys |= {
            name[len(ENV_PREFIX) :].lower()
            for name in os.environ
            if name.startswith(ENV_PREFIX) and _KEY_PATTERN.match(name[len(ENV_PREFIX) :].lower())
        }
        return {key: self.lookup(key) for key in sorted(keys)}

    def _read(self) -> dict[str, Any]:
        path = self.path
        try:
            st = path.stat()
        except FileNotFoundError:
            self._cache_key, self._cache = None, {}
            return self._cache
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._cache_key:
            self._cache = self._parse(path)
            self._cache_key = key
        return self._cache

    @staticmethod
    def _parse(path: Path) -> dict[str, Any]:
        import yaml  # imported here: `import runhouse` stays light when no config is read

        try:
            data = yaml.safe_load(path.read_text())
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark is not None else None
            raise CorruptConfigError(path, line, str(exc.problem or exc)) from exc
        except yaml.YAMLError as exc:
            raise CorruptConfigError(path, None, str(exc)) from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path} must hold a mapping of settings, not a {type(data).__name__}.", path
            )
        return data

    def _write(self, stored: dict[str, Any]) -> None:
        import yaml

        try:
            text = yaml.safe_dump(stored, sort_keys=True, default_flow_style=False)
        except yaml.representer.RepresenterError as exc:
            raise ConfigError(
                f"Cannot store {exc.args[-1]!r} in {self.path}: not a YAML value."
            ) from exc
        # 0600: the file holds tokens once a user logs in.
        atomic_write(self.path, text, mode=0o600)
        self._cache_key = None


def _without_credentials(value: Any) -> Any:
    """``value`` without the entries of its mappings (at any depth) whose names look like
    credentials."""
    if isinstance(value, dict):
        return {
            k: _without_credentials(v)
            for k, v in value.items()
            if not (isinstance(k, str) and looks_like_credential(k))
        }
    if isinstance(value, list):
        return [_without_credentials(v) for v in value]
    return value


configs = Configs()
