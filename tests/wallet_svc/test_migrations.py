"""The Alembic migration builds exactly the schema the code declares, on both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from casino_kit.sql import create_engine, migrate
from tests.conftest import postgres_database
from tests.wallet_svc.helpers import sqlite_url
from wallet_svc.tables import metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_migration_matches_the_tables_and_runs_once(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        await _check(sqlite_url(tmp_path))
        return
    async with postgres_database() as url:
        await _check(url)


async def _check(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "wallet_svc")
        await migrate(engine, "wallet_svc")  # a restart finds the schema current
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            tables = await connection.run_sync(_tables)
            assert set(metadata.tables) | {"alembic_version"} == tables
            version = await connection.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar_one() == "0001"
    finally:
        await engine.dispose()
