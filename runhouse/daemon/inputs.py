"""The daemon's checks of names in requests: env names and object keys (400 if bad)."""

from __future__ import annotations

import re

from runhouse.daemon.asgi import HTTPError

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@\-]{0,199}$")
_MAX_KEY = 512


def name(value: str, what: str) -> str:
    """``value`` if it is a valid env (or run) name; else a 400 saying what is allowed."""
    if not _NAME.match(value):
        raise HTTPError(
            400,
            "InvalidName",
            f"invalid {what} {value!r}: use letters, digits, '_', '.', '-', '@' (max 200)",
        )
    return value


def key(value: str, what: str = "key") -> str:
    """``value`` if it is a valid object key; else a 400 saying what is allowed."""
    # Keys are the user's names for objects (model ids such as "org/model" among them):
    # any printable text, but not the daemon's own prefix.
    if not value or len(value) > _MAX_KEY or not value.isprintable() or value.strip() != value:
        raise HTTPError(
            400,
            "InvalidName",
            f"invalid {what} {value!r}: use 1-{_MAX_KEY} printable characters, "
            "without leading or trailing spaces",
        )
    if value == "_rh" or value.startswith("_rh/"):
        raise HTTPError(400, "InvalidName", f"invalid {what} {value!r}: '_rh' is the daemon's")
    return value
