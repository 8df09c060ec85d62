"""Logging in to Den (the metadata server) and out again.

    >>> rh.login(token="rhd_...", den_url="http://den:8900")
    'ana'

Logging in checks the token with Den first, then records ``den_url``, ``token`` and
``username`` in ``~/.rh/config.yaml`` and makes ``/<username>`` the default folder, so bare
names and ``@/x`` save to Den while ``~/x`` stays local. A token Den refuses writes nothing.
"""

from __future__ import annotations

import contextlib

from runhouse.config import configs
from runhouse.names.den import DenStore

DEFAULT_DEN_URL = "http://127.0.0.1:8900"


def login(token: str | None = None, den_url: str | None = None) -> str:
    """Check ``token`` with Den at ``den_url`` and record both; returns the username."""
    url = den_url or configs.get("den_url") or DEFAULT_DEN_URL
    token = token or configs.get("token")
    if not token:
        raise ValueError(
            "Logging in needs a token: rh.login(token=...) or `runhouse login --token TOKEN` "
            "(a Den admin makes one with `runhouse den user add NAME`)."
        )
    username = DenStore(url, token).whoami().username  # raises DenAuthError on a bad token
    configs.set("den_url", url)
    configs.set("token", token)
    configs.set("username", username)
    configs.set("default_folder", f"/{username}")
    return username


def logout() -> None:
    """Forget the token and username (den_url stays); bare names go back to the local store."""
    stored = configs.stored()
    folder = stored.get("default_folder")
    for key in ("token", "username"):
        with contextlib.suppress(KeyError):
            configs.delete(key)
    if isinstance(folder, str) and folder.startswith(("/", "@")):
        with contextlib.suppress(KeyError):
            configs.delete("default_folder")
