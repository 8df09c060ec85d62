"""Groups on Den: members with roles, nested to any depth, and defaults for their members.

    >>> g = rh.group("/acme/ml")          # created if missing (needs admin of /acme)
    >>> g.add_member("ana", role="writer")
    >>> [(m.username, m.role, m.via) for m in g.members()]
    [('boss', 'admin', 'acme'), ('ana', 'writer', 'acme/ml')]

A group's members get their role on everything under the group's folder (``/acme/ml/...``);
a member of ``/acme`` is a member of ``/acme/ml`` too. A group is not a saved resource: it
has no config or versions, only its members and defaults on Den.
"""

from __future__ import annotations

from typing import Any

from runhouse.exceptions import InvalidNameError
from runhouse.names.den import DenStore, GroupInfo, Member
from runhouse.names.folders import resolve
from runhouse.names.resolver import store_for


class Group:
    """A group on Den, by its path (``/acme/ml``)."""

    def __init__(self, path: str) -> None:
        address = resolve(path)
        if address.store != "den" or not address.parts:
            raise InvalidNameError(
                path,
                "groups live on the metadata server (Den): give a path such as '/acme' or "
                "'/acme/ml' (and log in with `runhouse login`)",
            )
        self.address = address

    @property
    def path(self) -> str:
        """The group's path, e.g. ``/acme/ml``."""
        return str(self.address)

    @property
    def store(self) -> DenStore:
        """The Den store the group lives in."""
        store = store_for(self.address)
        assert isinstance(store, DenStore)  # resolve() gave a "den" address
        return store

    def create(self) -> bool:
        """Create the group on Den; ``False`` if it was there already."""
        return self.store.create_group(self.address)

    def exists(self) -> bool:
        """Whether the group exists (and the caller may see it)."""
        return self.store.group(self.address) is not None

    def info(self) -> GroupInfo:
        """The group's members (inherited ones too) and defaults."""
        info = self.store.group(self.address)
        if info is None:
            raise KeyError(
                f"No group {self.path!r} on Den (or you are not a member of it); "
                f"create it with rh.group({self.path!r}) as an admin of its parent group."
            )
        return info

    def members(self) -> list[Member]:
        """Everyone with a role in the group: username, role, and the group it comes from."""
        return self.info().members

    def add_member(self, user: str, role: str = "reader") -> None:
        """Give ``user`` the role ``"reader"``, ``"writer"`` or ``"admin"`` in this group."""
        self.store.add_member(self.address, user, role)

    def remove_member(self, user: str) -> bool:
        """Take ``user`` out of this group; whether they were in it."""
        return self.store.remove_member(self.address, user)

    @property
    def defaults(self) -> dict[str, Any]:
        """Settings the group's members get unless they set their own."""
        return self.info().defaults

    def set_defaults(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """Replace the group's defaults; returns them as Den stored them."""
        return self.store.set_group_defaults(self.address, dict(defaults))

    def delete(self) -> bool:
        """Delete the group (its members lose their roles); whether it existed."""
        return self.store.delete_group(self.address)

    def __repr__(self) -> str:
        return f"Group({self.path!r})"


def group(path: str) -> Group:
    """The group at ``path`` (``/acme/ml``) on Den, created if missing."""
    made = Group(path)
    if not made.exists():
        made.create()
    return made
