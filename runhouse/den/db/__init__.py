"""Den's database: the tables (``models``), engines and sessions (``session``), and the
Alembic migrations that build and upgrade the schema (``migrate``)."""
