"""The working dir, the current folder stack, and turning names into addresses."""

from __future__ import annotations

import threading
from pathlib import Path

from runhouse.config import configs
from runhouse.exceptions import InvalidNameError, StoreUnavailableError
from runhouse.names.address import LOCAL_ROOT, Address, check_part, split

# A folder holding any of these is a project root; the nearest one up from the cwd wins.
WORKING_DIR_MARKERS = ("rh", ".git", "pyproject.toml", "setup.py", "requirements.txt")

_stack: list[Address] = []
_stack_lock = threading.Lock()


def working_dir(start: Path | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: the cwd) that looks like a project root."""
    here = (start or Path.cwd()).resolve()
    return project_root(here) or here


def project_root(start: Path | None = None) -> Path | None:
    """The nearest ancestor holding a project marker, or ``None`` if there is none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for marker in WORKING_DIR_MARKERS:
            candidate = folder / marker
            if candidate.is_dir() if marker == "rh" else candidate.exists():
                return folder
    return None


def user_folder() -> Address:
    """Where ``@/`` points: the user's folder on the metadata server, or ``~`` when logged out."""
    if not configs.get("token"):
        return LOCAL_ROOT
    username = configs.get("username")
    if not username:
        raise StoreUnavailableError(
            "@/", "a token is set but no username; run `runhouse config set username NAME`."
        )
    check_part(username, f"@ (username {username!r})")
    return Address("den", (username,))


def resolve(name: str, base: Address | None = None) -> Address:
    """Turn a name into an absolute ``Address``, relative to ``base`` or the current folder."""
    root, parts = split(name)
    if root == "~":
        return Address("local", parts)
    if root == "@":
        user = user_folder()
        return Address(user.store, user.parts + parts)
    if root == "/":
        return Address("den", parts)
    start = base if base is not None else current()
    return Address(start.store, start.parts + parts)


def resource_address(name: str) -> Address:
    """Resolve ``name`` and check that it can name a resource (not a store's root)."""
    address = resolve(name)
    if not address.parts:
        raise InvalidNameError(
            name, f"{str(address)!r} is a folder; give the resource a name in it"
        )
    return address


def current() -> Address:
    """The current folder as an ``Address``."""
    with _stack_lock:
        if _stack:
            return _stack[-1]
    return _default_folder()


def _default_folder() -> Address:
    # An empty default_folder setting means "no preference", i.e. the local store's root.
    return resolve(configs.get("default_folder") or "~", base=LOCAL_ROOT)


def current_folder() -> str:
    """The folder that bare names resolve in, e.g. ``'~'`` or ``'~/team'``."""
    return str(current())


def set_folder(path: str) -> str:
    """Make ``path`` the current folder (pushed on a stack; ``unset_folder`` pops it)."""
    address = resolve(path)
    with _stack_lock:
        _stack.append(address)
    return str(address)


def unset_folder() -> str:
    """Return to the folder that was current before the last ``set_folder``; returns it."""
    with _stack_lock:
        if not _stack:
            raise IndexError(
                "unset_folder: no folder was set with rh.set_folder; "
                f"the current folder is already the default {str(_default_folder())!r}."
            )
        _stack.pop()
    return current_folder()


def reset_folders() -> None:
    """Empty the folder stack (for a fresh start in long-lived processes and tests)."""
    with _stack_lock:
        _stack.clear()
