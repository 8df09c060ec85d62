"""Rotating Den's master key: every data key re-wrapped with a new master key, the sealed
values themselves untouched (``runhouse den rotate-master-key``).

    1. The new key is made and kept beside the old one (``master_key.new``, mode 600); if
       that file exists, a rotation was interrupted, and this one resumes with its key.
    2. Each row still wrapped by the old key is re-wrapped, each in its own transaction,
       and only if it is still wrapped by the old key then (so a second run, or a row
       written meanwhile, is never wrapped twice).
    3. Once no row is left on the old key, the new key file replaces the old one.

Until step 3 the old key stays in place, and a Den started meanwhile opens rows wrapped by
either key. Den must not serve while a rotation runs (``rotate`` holds the data folder's
lock, so a Den cannot start on this data folder until it ends): a value it sealed with the
old key after the rotation passed would be lost with that key. Dens on other hosts that
share the database (PostgreSQL) must be stopped by their operator first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy import select, update

from runhouse import fileio
from runhouse.den import crypto
from runhouse.den.bootstrap import open_database
from runhouse.den.db.models import Resource, SecretValue
from runhouse.den.db.session import Database
from runhouse.den.files import DenFiles
from runhouse.den.settings import DenSettings
from runhouse.exceptions import DenServerError

_BATCH = 200  # rows read at a time (each is re-wrapped in a transaction of its own)


@dataclass
class Rotation:
    """What a rotation did: the old and new key ids, rows re-wrapped (this run and in all),
    and rows it could not re-wrap (sealed by another key, or altered), by ``/path vN``."""

    old_id: str
    new_id: str
    rewrapped: int = 0
    total: int = 0
    resumed: bool = False
    skipped: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether every row is on the new key (and the new key replaced the old one)."""
        return not self.skipped


def rotate(settings: DenSettings) -> Rotation:
    """Re-wrap every data key of the database the settings name with a new master key;
    resumes an interrupted rotation. ``DenServerError`` if a Den serves the data folder."""
    files = DenFiles(settings.data_dir)
    files.ensure_root()
    lock_fd = fileio.hold_lock(files.lock)
    if lock_fd is None:
        info = files.read_info() or {}
        raise DenServerError(
            f"a Den serves {settings.data_dir} (pid {info.get('pid')}): stop it first "
            "(`runhouse den stop`), rotate, then start it again"
        )
    try:
        db = open_database(settings)
        try:
            return _rotate(settings, db)
        finally:
            db.close()
    finally:
        os.close(lock_fd)


def _rotate(settings: DenSettings, db: Database) -> Rotation:
    path = settings.master_key_path
    old = crypto.read_key_file(path)
    pending = crypto.pending_path(path)
    resumed = pending.exists()
    if resumed:
        new = crypto.read_key_file(pending)
    else:
        new = crypto.new_key()
        crypto.write_key_file(pending, new)
    report = Rotation(old.id, new.id, resumed=resumed)
    after = 0
    while True:
        with db.session() as session:
            rows = session.execute(
                select(
                    SecretValue.id,
                    Resource.path,
                    SecretValue.version,
                    SecretValue.wrapped_key,
                    SecretValue.key_id,
                )
                .join(Resource, Resource.id == SecretValue.resource_id)
                .where(SecretValue.id > after)
                .order_by(SecretValue.id)
                .limit(_BATCH)
            ).all()
        if not rows:
            break
        after = rows[-1].id
        for row_id, key, version, wrapped, key_id in rows:
            report.total += 1
            if key_id == new.id:
                continue  # re-wrapped by an earlier, interrupted run
            try:
                if key_id != old.id:
                    raise crypto.Undecryptable("sealed with another master key")
                rewrapped = crypto.rewrap(old, new, wrapped, key, version)
            except crypto.Undecryptable:
                report.skipped.append(f"/{key} v{version} (master key {key_id})")
                continue
            with db.session(write=True) as session:
                done = session.execute(
                    update(SecretValue)
                    .where(SecretValue.id == row_id, SecretValue.key_id == old.id)
                    .values(wrapped_key=rewrapped, key_id=new.id)
                    .execution_options(synchronize_session=False)
                )
                session.commit()
            report.rewrapped += int(getattr(done, "rowcount", 0) or 0)
    if report.finished:
        os.replace(pending, path)  # the old key is gone only now: every row is on the new
    return report
