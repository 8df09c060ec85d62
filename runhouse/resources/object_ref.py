"""A handle on a value kept on a cluster (what ``fn.remote()`` returns)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runhouse.resources.cluster import Cluster


class ObjectRef:
    """A handle on an object kept on a cluster (what ``fn.remote()`` returns)."""

    def __init__(self, system: Cluster, key: str) -> None:
        self.system = system
        self.key = key

    def fetch(self) -> Any:
        """The object's value, brought here."""
        return self.system._with_client(
            lambda c: c.value("GET", f"/_rh/objects/{self.key}", self.key)
        )

    def delete(self) -> None:
        """Remove the object from the cluster."""
        self.system.delete(self.key)

    def __repr__(self) -> str:
        return f"ObjectRef(key={self.key!r})"
