"""Build or upgrade Den's schema with Alembic, configured in code (no alembic.ini), so that
it works from a wheel: the migration scripts ship as package data beside this module."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from runhouse.den.db.session import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def config() -> Config:
    """Alembic's configuration for Den's migrations."""
    cfg = Config()
    # ConfigParser interpolates "%": a folder name holding one must not break it.
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return cfg


def head() -> str:
    """The newest revision the migrations define."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None, f"no migrations in {MIGRATIONS}"
    return revision


def current(db: Database) -> str | None:
    """The revision the database is at (None: never migrated, e.g. a new database)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> None:
    """Bring the database to the newest revision, in one transaction (SQLite: holding the
    write lock, so two Dens started on one file cannot migrate it at once)."""
    cfg = config()
    with db.engine.execution_options(den_write=True).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
