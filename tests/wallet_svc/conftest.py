"""Wallet processes shared by a test module: one on SQLite (the embedded default) and one on
PostgreSQL, started once per module to keep the suite fast."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import postgres_database
from tests.wallet_svc.helpers import RunningWallet, running_wallet

COOLING_S = "1"
"""Limit raises wait one second in these processes, so tests can watch one take effect."""


@pytest_asyncio.fixture(scope="module", params=["sqlite", "postgres"])
async def wallet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningWallet]:
    data_dir = tmp_path_factory.mktemp(f"wallet-{request.param}")
    if request.param == "sqlite":
        async with running_wallet(data_dir, CASINO_LIMIT_COOLING_S=COOLING_S) as running:
            yield running
        return
    async with postgres_database() as url:
        async with running_wallet(data_dir, url, CASINO_LIMIT_COOLING_S=COOLING_S) as running:
            yield running
