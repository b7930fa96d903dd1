"""Alembic environment: runs the wallet's revisions on the connection ``casino_kit.sql.migrate``
hands over in ``config.attributes["connection"]`` (inside its transaction)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from wallet_svc.tables import metadata

MIGRATION_LOCK = 0x57A11E7
"""PostgreSQL advisory lock key: replicas starting together migrate one after the other."""


def run_migrations_online() -> None:
    connection: Connection = context.config.attributes["connection"]
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("the wallet migrates online only, through casino_kit.sql.migrate")
run_migrations_online()
