"""Alembic environment: runs on the connection ``casino_kit.sql.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from game_svc.store import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
