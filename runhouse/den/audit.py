"""The audit log: every write Den serves, every login, and every token that fails, with who
(``actor``), what (``action``, ``target``), when (``at``, UTC), from where (``remote``: the
socket peer; Den honours no forwarding header) and how it ended (``outcome``):

    ok      done (or nothing to do: deleting what is not there)
    denied  the caller may not do it (401, 403)
    failed  anything else stopped it (404, 409, 400, ...; a bug in Den)

Writes are recorded by ``api.deps.Context.write``: an ok event goes in the write's own
transaction (``Event.commit``), so the log and the data never disagree; a refused or failed
write is recorded in a transaction of its own, after the write's was rolled back. Requests
refused before they name a target (an unparseable path, a body over the limit or not
matching the schema) change nothing and are not recorded.

``detail`` never holds a secret or a token: the token a request used is named by its prefix
(``"token"``), and lists are cut to ``LIST_CAP`` items (with their full ``<key>_count``).

Actions: login, token.rejected, resource.save, resource.delete, grant.add, grant.remove,
visibility.set, user.add, user.remove, token.create, token.revoke, group.create,
group.delete, member.set, member.remove, group_defaults.set, defaults.set, cache.clear.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.orm import Session

from runhouse.den.auth import TokenRejected
from runhouse.den.db.models import AuditEvent, now
from runhouse.den.db.session import Database
from runhouse.den.errors import ApiError

log = logging.getLogger("runhouse.den")
Outcome = Literal["ok", "denied", "failed"]
LIST_CAP = 100  # items of a list kept in an event's detail
_REMOTE = 64  # characters of the remote column
_TARGET = 2049  # characters of the target column
_REQUEST = 300  # characters of a request line kept in a rejected token's event
_TOKEN = re.compile(r"rhd_([a-z0-9]{8})_[A-Za-z0-9_\-]+")
_INSERT = insert(AuditEvent.__table__)  # type: ignore[arg-type]


@dataclass
class Event:
    """One request's audit event, filled in as the request goes."""

    action: str
    target: str | None
    remote: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None
    session: Session | None = None
    recorded: bool = False

    def commit(self, **detail: Any) -> None:
        """Add ``detail``, record the event as ok in the write's transaction, and commit
        both (the route's one commit)."""
        assert self.session is not None, "the event is not bound to a write session"
        self.detail.update(detail)
        # A Core insert: the unit of work costs more than the insert for one row.
        self.session.execute(_INSERT, self.values("ok"))
        self.session.commit()
        self.recorded = True

    def row(self, outcome: Outcome) -> AuditEvent:
        """The event as a row of ``audit_events``."""
        return AuditEvent(**self.values(outcome))

    def values(self, outcome: Outcome) -> dict[str, Any]:
        """The event's columns in ``audit_events``, for an insert."""
        return {
            "at": now(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target[:_TARGET] if self.target else None,
            "outcome": outcome,
            "detail": _bounded(self.detail),
            "remote": self.remote[:_REMOTE] if self.remote else None,
        }


def outcome_of(exc: BaseException) -> Outcome:
    """How an error ended a request: denied for 401 and 403, failed for the rest."""
    if isinstance(exc, ApiError) and exc.status in (401, 403):
        return "denied"
    return "failed"


def record(db: Database, event: Event, outcome: Outcome) -> None:
    """Record ``event`` in a transaction of its own. A failure here is logged, not raised:
    the request's own answer (an error, usually) must reach the caller."""
    try:
        with db.session(write=True) as session:
            session.add(event.row(outcome))
            session.commit()
    except Exception:
        log.exception("could not record the audit event %s on %s", event.action, event.target)


def record_failure(db: Database, event: Event, exc: BaseException) -> None:
    """Record a write that did not happen, with the answer it got."""
    if isinstance(exc, ApiError):
        event.detail.update(status=exc.status, error=exc.code)
    else:
        event.detail.update(status=500, error="internal")
    record(db, event, outcome_of(exc))


def record_rejected(
    db: Database, rejected: TokenRejected, remote: str | None, request: str
) -> None:
    """Record a token that could not be used: why, its prefix (if it has a token's shape),
    whose it was (if Den knows), and the request it came with."""
    detail: dict[str, Any] = {
        "reason": rejected.reason,
        "request": without_tokens(request)[:_REQUEST],
    }
    if rejected.prefix:
        detail["token"] = rejected.prefix
    event = Event("token.rejected", None, remote, detail, actor=rejected.username)
    record(db, event, "denied")


def without_tokens(text: str) -> str:
    """``text`` with anything shaped like a token cut to its prefix (``rhd_<prefix>_...``)."""
    return _TOKEN.sub(r"rhd_\1_...", text)


def _bounded(detail: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(value, list) and len(value) > LIST_CAP:
            kept[key] = value[:LIST_CAP]
            kept[f"{key}_count"] = len(value)
        else:
            kept[key] = value
    return kept
