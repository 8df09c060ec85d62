"""Resource addresses: parsing and validation, without touching any store.

~/team/x      the local store (the ``rh/`` folder at the working dir's root)
@/x           the logged-in user's folder on the metadata server; ``~/x`` when logged out
/org/team/x   a group's folder on the metadata server
x, ./x, a/x   relative to the current folder (``rh.set_folder``)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from runhouse.exceptions import InvalidNameError

StoreKind = Literal["local", "den"]

# Names of places and storage systems that `.to(...)` accepts; a resource named so would be
# ambiguous there. "config.json" is the file each resource folder holds.
RESERVED = frozenset({"here", "file", "s3", "gs", "gcs", "azure", "config.json"})
MAX_PART_LENGTH = 128
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_ALLOWED = (
    "letters, digits, '_', '-' and '.', not starting with '.' or '-', "
    f"at most {MAX_PART_LENGTH} characters per path segment"
)


@dataclass(frozen=True)
class Address:
    """A resolved address: which store, and the path segments inside it."""

    store: StoreKind
    parts: tuple[str, ...]

    def __str__(self) -> str:
        joined = "/".join(self.parts)
        if self.store == "local":
            return f"~/{joined}" if joined else "~"
        return f"/{joined}"

    @property
    def name(self) -> str | None:
        """The last segment, or ``None`` for a store's root folder."""
        return self.parts[-1] if self.parts else None

    @property
    def parent(self) -> Address:
        """The folder holding this address."""
        return Address(self.store, self.parts[:-1])

    def child(self, *parts: str) -> Address:
        """This folder's address joined with ``parts`` (validated)."""
        for part in parts:
            check_part(part, str(self))
        return Address(self.store, self.parts + tuple(parts))


LOCAL_ROOT = Address("local", ())


def check_part(part: str, whole: str) -> None:
    """Raise ``InvalidNameError`` unless ``part`` is an allowed path segment."""
    if part == "":
        raise InvalidNameError(whole, "it has an empty path segment ('//' or a trailing '/')")
    if part in ("..", "."):
        raise InvalidNameError(
            whole, f"{part!r} is not allowed inside a name; addresses cannot climb folders"
        )
    if part.lower() in RESERVED:
        raise InvalidNameError(
            whole,
            f"{part!r} is reserved (reserved words: {', '.join(sorted(RESERVED))}); "
            "choose another name",
        )
    if len(part) > MAX_PART_LENGTH or not _PART.match(part):
        raise InvalidNameError(whole, f"segment {part!r} is not allowed; use {_ALLOWED}")


def split(text: object) -> tuple[str, tuple[str, ...]]:
    """Split an address into its root (``~``, ``@``, ``/`` or ``.``) and checked segments."""
    if not isinstance(text, str):
        raise InvalidNameError(text, f"a name must be a string, not {type(text).__name__}")
    if not text.strip():
        raise InvalidNameError(text, "it is empty; use " + _ALLOWED)
    if any(ch.isspace() for ch in text):
        raise InvalidNameError(text, "it contains whitespace; use " + _ALLOWED)
    for root in ("~", "@"):
        if text == root:
            return root, ()
        if text.startswith(root + "/"):
            rest = text[2:]
            return root, _parts(rest, text) if rest else ()
        if text.startswith(root):
            raise InvalidNameError(text, f"{root!r} must be followed by '/' (as in '{root}/x')")
    if text.startswith("/"):
        return "/", _parts(text[1:], text) if text != "/" else ()
    if text.startswith("./"):
        rest = text[2:]
        return ".", _parts(rest, text) if rest else ()
    return ".", _parts(text, text)


def _parts(path: str, whole: str) -> tuple[str, ...]:
    parts = tuple(path.split("/"))
    for part in parts:
        check_part(part, whole)
    return parts
