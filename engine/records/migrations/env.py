"""Alembic's environment for the assessment records: always run from ``engine.records.database`` with a
connection it opened (``painlens db upgrade``, the tests), never from an alembic.ini."""

from __future__ import annotations

from alembic import context

from engine.records.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters a table by copying it
with context.begin_transaction():
    context.run_migrations()
