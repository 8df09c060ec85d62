"""Den paths: ``acme/ml/x`` in URLs and tables, ``("acme", "ml", "x")`` in code, and
``/acme/ml/x`` (an address) in messages. Segments follow the client's address rules."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from runhouse.den.errors import bad_request
from runhouse.den.permissions import Path
from runhouse.exceptions import InvalidNameError
from runhouse.names.address import check_part

MAX_LENGTH = 1024  # characters of a whole path (the columns hold 2048)


def parse(text: str, what: str = "path", allow_root: bool = False) -> Path:
    """The checked segments of a path from a URL; 400 naming the problem if one is bad."""
    if text.startswith("/"):
        text = text[1:]
    if len(text) > MAX_LENGTH:
        raise bad_request(f"the {what} is {len(text)} characters long; at most {MAX_LENGTH}")
    if text == "":
        if allow_root:
            return ()
        raise bad_request(f"the {what} is empty: give an address such as /alice/model")
    parts = tuple(text.split("/"))
    for part in parts:
        try:
            check_part(part, "/" + text)
        except InvalidNameError as exc:
            raise bad_request(str(exc)) from None
    return parts


def username(text: str) -> str:
    """A checked username (one path segment); 400 if it cannot be one."""
    parts = parse(text, "username")
    if len(parts) != 1 or text.startswith("/"):
        raise bad_request(f"a username is one path segment, such as 'alice', not {text!r}")
    return parts[0]


def key(path: Path) -> str:
    """The stored form: segments joined by "/", no leading "/"."""
    return "/".join(path)


def show(path: Path) -> str:
    """The address form, for messages and listings: "/acme/ml/x"."""
    return "/" + "/".join(path)


def principal_group(principal: str) -> Path | None:
    """The group a principal names ("/acme/ml" -> ("acme", "ml")), or None for a user."""
    if not principal.startswith("/"):
        return None
    return tuple(principal[1:].split("/"))


def prefixes(path: Path) -> list[str]:
    """The stored forms of the path and every folder above it (the first segment first)."""
    return [key(path[:n]) for n in range(1, len(path) + 1)]


def beneath(column: InstrumentedAttribute[str], path: Path) -> ColumnElement[bool]:
    """SQL: ``column`` is strictly beneath the folder ``path`` (anything for the root).

    A bytewise range, not LIKE: "/" is 0x2F and "0" is 0x30, so every "acme/..." sorts in
    ["acme/", "acme0"), and the index on the column serves it.
    """
    if not path:
        return column != ""
    base = key(path)
    return and_(column > base + "/", column < base + "0")


def at_or_beneath(column: InstrumentedAttribute[str], path: Path) -> ColumnElement[bool]:
    """SQL: ``column`` is the path itself or beneath it."""
    return or_(column == key(path), beneath(column, path))
