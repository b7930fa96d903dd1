"""Fixtures shared by the whole suite: an OTLP collector and the platform's real processes."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from casino_cli.platform import Platform
from tests.otlp import Collector


@pytest_asyncio.fixture(scope="session")
async def collector() -> AsyncIterator[Collector]:
    async with Collector.running() as running:
        yield running


@pytest_asyncio.fixture(scope="session")
async def platform(
    tmp_path_factory: pytest.TempPathFactory, collector: Collector
) -> AsyncIterator[Platform]:
    """All six services as real processes on free loopback ports, exporting to ``collector``."""
    data_dir: Path = tmp_path_factory.mktemp("platform")
    running = Platform(data_dir=data_dir, free_ports=True, env=collector.exporter_env())
    await running.start()
    yield running
    await running.stop()


POSTGRES_ADMIN_URL = os.environ.get(
    "CASINO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CASINO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database on the real server, dropped afterwards.

    The URL is in SQLAlchemy's asyncpg form, ready for ``CASINO_DATABASE_URL``.
    """
    name = f"casino_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture
async def postgres_url() -> AsyncIterator[str]:
    """``postgres_database`` for one test."""
    async with postgres_database() as url:
        yield url
