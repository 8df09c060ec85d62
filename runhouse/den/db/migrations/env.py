"""Alembic's entry point for Den's migrations: always run on the connection that
``runhouse.den.db.migrate`` passes in (never from a URL in a file)."""

from __future__ import annotations

from alembic import context

from runhouse.den.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
