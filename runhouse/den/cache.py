"""Facts Den needs on almost every request, kept in memory: who a token belongs to, a user's
memberships, the grants on a path, and a resource's current version. The permission
function still decides every request (``permissions.decide``); these are only its facts.

Coherence. Den is the only writer of its database: one Den serves one database (``den
start`` holds a lock on its data folder, and several Den processes on one database are not
supported). Every session records the tables it wrote (``db/session.py``); once the write
commits, the entries fed by those tables are dropped (``TABLE_SHELVES``): all of them, or,
for a saved or deleted resource, that resource's entry alone. The answer to a write is sent
after that, so a request sent after it sees the change. A request that read the database
before a drop must not put back what it read: a fill takes a ticket before it reads, and a
drop of its key (or of the whole shelf) after that ticket refuses the fill. A session's
ticket is taken when it is made (``db/session.py``), before its first statement.

    >>> cache = FactCache()
    >>> ticket = cache.ticket()
    >>> cache.grants.drop("a")          # a write committed while the fill was reading
    >>> cache.grants.keep("a", (), ticket), cache.grants.get("a")
    (False, None)

Bounds: each shelf holds at most ``limit`` entries (and ``budget`` units of ``size``, for
resources' bodies); past that the oldest entries go first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from runhouse.den.permissions import Grant, Membership

K = TypeVar("K")
V = TypeVar("V")
NO_FILL = -1  # a ticket that no shelf keeps a fill with
# Keys of drops remembered for fills still reading; past this many, every such fill is
# refused instead (a fill refused only means one more read of the database).
_DROPS_KEPT = 10_000


class Clock:
    """Counts drops, for every shelf of one cache; its lock guards every shelf's changes."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()


class Shelf(Generic[K, V]):
    """One kind of fact by key: read without a lock, filled under tickets, dropped by key
    or all at once."""

    def __init__(
        self,
        clock: Clock,
        limit: int,
        budget: int | None = None,
        size: Callable[[V], int] | None = None,
    ) -> None:
        self._clock = clock
        self._limit = limit
        self._budget = budget
        self._size = size
        self._weight = 0
        self._entries: dict[K, V] = {}
        self._floor = 0  # fills whose ticket is older than this are refused (NO_FILL is)
        self._dropped: dict[K, int] = {}  # key -> the clock of its last drop

    def get(self, key: K) -> V | None:
        """The entry for ``key``, or None."""
        return self._entries.get(key)

    def keep(self, key: K, value: V, ticket: int) -> bool:
        """Keep ``value`` for ``key`` unless it may be stale: dropped since ``ticket``."""
        weight = self._size(value) if self._size else 1
        with self._clock.lock:
            if self._floor > ticket or self._dropped.get(key, -1) > ticket:
                return False
            if self._budget is not None and weight > self._budget // 4:
                return False  # one entry must not push out most of the others
            self._remove(key)
            while self._entries and (
                len(self._entries) >= self._limit
                or (self._budget is not None and self._weight + weight > self._budget)
            ):
                self._remove(next(iter(self._entries)))  # the oldest
            self._entries[key] = value
            self._weight += weight
            return True

    def drop(self, key: K) -> None:
        """Forget ``key`` and refuse the fills of it that are reading now."""
        with self._clock.lock:
            self._clock.value += 1
            self._remove(key)
            if len(self._dropped) >= _DROPS_KEPT:
                self._dropped.clear()
                self._floor = self._clock.value
            self._dropped[key] = self._clock.value

    def clear(self) -> None:
        """Forget everything and refuse every fill that is reading now."""
        with self._clock.lock:
            self._clock.value += 1
            self._floor = self._clock.value
            self._dropped.clear()
            self._entries.clear()
            self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _remove(self, key: K) -> None:
        value = self._entries.pop(key, None)
        if value is not None:
            self._weight -= self._size(value) if self._size else 1


@dataclass(frozen=True)
class TokenRow:
    """What Den knows of a token (found by its hash): whose it is and whether it still works."""

    prefix: str
    user_id: int
    username: str
    admin: bool
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ResourceRow:
    """A resource's current state, and (once loaded) its current version's answer as JSON."""

    id: int
    owner: str | None
    visibility: str
    current_version: int
    body: bytes | None = None


# What each table's rows feed: a write to the table drops those shelves once it commits.
# A table not named here drops everything (a new table is safe before it is listed).
TABLE_SHELVES: dict[str, tuple[str, ...]] = {
    "tokens": ("tokens",),
    "users": ("tokens", "memberships"),
    "memberships": ("memberships",),
    "groups": ("memberships",),
    "grants": ("grants",),
    "resources": ("resources",),
    "resource_versions": ("resources",),
    "audit_events": (),
    "secret_values": (),
    "alembic_version": (),
}
SHELVES = ("tokens", "memberships", "grants", "resources")
RESOURCE_BUDGET = 32 * 1024 * 1024  # bytes of cached answers


class FactCache:
    """Den's shelves: tokens by hash, memberships by user id, grants by path (stored form,
    "acme/ml"; an empty tuple is a fact too), resources by path."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.tokens: Shelf[str, TokenRow] = Shelf(self.clock, limit=10_000)
        self.memberships: Shelf[int, tuple[Membership, ...]] = Shelf(self.clock, limit=10_000)
        self.grants: Shelf[str, tuple[Grant, ...]] = Shelf(self.clock, limit=100_000)
        self.resources: Shelf[str, ResourceRow] = Shelf(
            self.clock, limit=20_000, budget=RESOURCE_BUDGET, size=_resource_size
        )

    def ticket(self) -> int:
        """A ticket for fills, taken before the database is read (for a transaction: before
        its first statement, which fixes what SQLite's transaction sees)."""
        return self.clock.value

    def committed(self, touched: Iterable[str | tuple[str, str]]) -> None:
        """Drop what a committed write changed: table names, or ``("resource", path)``
        for one resource's rows."""
        shelves: set[str] = set()
        paths: set[str] = set()
        for mark in touched:
            if isinstance(mark, tuple):
                paths.add(mark[1])
            else:
                shelves.update(TABLE_SHELVES.get(mark, SHELVES))
        for name in shelves:
            self.shelf(name).clear()
        if "resources" not in shelves:
            for path in paths:
                self.resources.drop(path)

    def clear(self) -> None:
        """Forget everything (after the database was changed behind Den's back)."""
        for name in SHELVES:
            self.shelf(name).clear()

    def shelf(self, name: str) -> Shelf[Any, Any]:
        """The shelf called ``name``."""
        shelf: Shelf[Any, Any] = getattr(self, name)
        return shelf


def _resource_size(row: ResourceRow) -> int:
    return 200 + (len(row.body) if row.body is not None else 0)
