"""SQL storage shared by the services that keep durable data (wallet, rng, game).

PostgreSQL in production, a SQLite file as the embedded default; the URL decides. Schema
changes are Alembic migrations kept in each service's ``migrations`` package; ``migrate``
brings a database to the newest revision at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def database_url(configured: str, data_dir: Path, name: str) -> str:
    """The configured URL, or the embedded default: a SQLite file ``<data_dir>/<name>.db``."""
    if configured:
        return configured
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{(data_dir / name).resolve()}.db"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite files get WAL, a busy timeout and foreign keys on."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _upgrade(connection: Connection, package: str) -> None:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine, package: str) -> None:
    """Upgrade the database to the newest revision in ``<package>/migrations``.

    The service's ``migrations/env.py`` runs the revisions on
    ``config.attributes["connection"]``; see ``run_migrations_online`` there.
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together on an empty database take turns.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": package}
            )
        await connection.run_sync(_upgrade, package)
