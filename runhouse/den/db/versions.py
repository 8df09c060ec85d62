"""Saving a resource's next version in as few statements as the database allows, with its
audit event, in one transaction.

The number comes from the resource's row: an upsert that makes the row (version 1) or adds
one to its ``current_version``, under the row's lock, and answers the new number. The save's
conditions are the upsert's own condition, checked on the locked row, so that of racing
saves with one ``expected_version`` exactly one wins, and saves without one get consecutive
numbers:

    expected_version N > 0      UPDATE ... WHERE current_version = N
    expected_version 0, or      INSERT ... ON CONFLICT DO UPDATE ... WHERE current_version = 0
      overwrite false
    otherwise                   INSERT ... ON CONFLICT DO UPDATE (always)

PostgreSQL runs the upsert, the version's row and the audit event's row as one statement
(data-modifying CTEs: atomic by itself, so the session needs no BEGIN or COMMIT). SQLite,
whose CTEs cannot write, runs them one by one in the writing transaction (which holds
SQLite's write lock from its start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, TextClause, bindparam, select, text
from sqlalchemy.orm import Session

from runhouse.den.audit import Event
from runhouse.den.db.models import Resource, UTCDateTime
from runhouse.den.db.session import TOUCHES

# SQL text, built once: a statement object built per save costs more than running it.
_NEW_ROW = """
INSERT INTO resources (path, owner, visibility, current_version, resource_type, created, updated)
VALUES (:path, :author, 'private', 1, :rtype, :stamp, :stamp)
ON CONFLICT (path) DO UPDATE SET
    current_version = resources.current_version + 1,
    owner = CASE WHEN resources.current_version = 0 THEN excluded.owner ELSE resources.owner END,
    resource_type = excluded.resource_type,
    updated = excluded.updated"""
_UPSERTS = {
    "always": _NEW_ROW,
    "only_new": _NEW_ROW + "\n    WHERE resources.current_version = 0",
    "expected": """
UPDATE resources
SET current_version = current_version + 1, resource_type = :rtype, updated = :stamp
WHERE path = :path AND current_version = :expected""",
}
_RETURNING = "\nRETURNING id, current_version"
_ADD_VERSION = """
INSERT INTO resource_versions (resource_id, version, config, author, "timestamp")
VALUES (:id, :version, :config, :author, :stamp)"""
# PostgreSQL: the upsert, the version's row and the event's row in one statement. The
# event's detail gains the version, which only the statement knows.
_CHAINED = """
WITH r AS ({upsert}
    RETURNING id, current_version
), v AS (
    INSERT INTO resource_versions (resource_id, version, config, author, "timestamp")
    SELECT id, current_version, CAST(:config AS JSON), :author, :stamp FROM r
    RETURNING version
), a AS (
    INSERT INTO audit_events (at, actor, action, target, outcome, detail, remote)
    SELECT :stamp, :actor, :action, :target, :outcome,
        CAST(CAST(:detail AS JSONB) || jsonb_build_object('version', v.version) AS JSON),
        :remote
    FROM v
)
SELECT version FROM v"""
_TYPES = (
    bindparam("stamp", type_=UTCDateTime()),
    bindparam("config", type_=JSON),
    bindparam("detail", type_=JSON),
)


def _statement(sql: str) -> TextClause:
    return text(sql).bindparams(*(p for p in _TYPES if f":{p.key}" in sql))


_SQLITE = {kind: _statement(sql + _RETURNING) for kind, sql in _UPSERTS.items()}
_SQLITE_VERSION = _statement(_ADD_VERSION)
_POSTGRES = {kind: _statement(_CHAINED.format(upsert=sql)) for kind, sql in _UPSERTS.items()}


@dataclass(frozen=True)
class NewVersion:
    """A save: where, what, by whom, when, and under which conditions."""

    path: str
    config: dict[str, Any]
    author: str
    stamp: datetime
    overwrite: bool = True
    expected_version: int | None = None

    @property
    def resource_type(self) -> str | None:
        """The config's resource_type, kept on the resource for listings."""
        rtype = self.config.get("resource_type")
        return rtype if isinstance(rtype, str) else None

    @property
    def kind(self) -> str:
        """Which upsert: "expected" (a version N > 0), "only_new", or "always"."""
        if self.expected_version:
            return "expected"
        return "only_new" if self.expected_version == 0 or not self.overwrite else "always"


def append(session: Session, new: NewVersion, event: Event) -> int | None:
    """Write ``new`` as the next version and ``event`` as ok, and commit; the version's
    number, or None when the conditions failed (then nothing was written)."""
    if new.expected_version and not new.overwrite:
        return None  # a version exists (or the expected one does not): refused either way
    options = {TOUCHES: (("resource", new.path),)}
    params: dict[str, Any] = {
        "path": new.path,
        "author": new.author,
        "rtype": new.resource_type,
        "stamp": new.stamp,
        "expected": new.expected_version,
    }
    if session.get_bind().dialect.name == "postgresql":
        values = event.values("ok")
        params.update(
            config=new.config,
            actor=values["actor"],
            action=values["action"],
            target=values["target"],
            outcome=values["outcome"],
            detail=values["detail"],
            remote=values["remote"],
        )
        found = session.execute(_POSTGRES[new.kind], params, execution_options=options)
        version = found.scalar()
        if version is not None:
            event.recorded = True
        session.commit()
        return None if version is None else int(version)
    made = session.execute(_SQLITE[new.kind], params, execution_options=options).first()
    if made is None:
        return None
    row = {
        "id": made.id,
        "version": made.current_version,
        "config": new.config,
        "author": new.author,
        "stamp": new.stamp,
    }
    session.execute(_SQLITE_VERSION, row, execution_options=options)
    event.commit(version=made.current_version)
    return int(made.current_version)


def current_version(session: Session, path: str) -> int:
    """The resource's current version (0: none), as it stands now."""
    found = session.scalar(select(Resource.current_version).where(Resource.path == path))
    return int(found or 0)
