"""Replaying the whole recorded request log with the same keys changes nothing."""

from __future__ import annotations

import random
from pathlib import Path

from tests.conftest import postgres_database
from tests.wallet_svc.helpers import running_wallet
from tests.wallet_svc.workload import Bank


async def test_replaying_the_log_returns_the_same_answers_and_moves_no_money(
    tmp_path: Path,
) -> None:
    async with postgres_database() as url, running_wallet(tmp_path, url) as wallet:
        bank = Bank(wallet.client, wallet.database_url, seed=21)
        await bank.run(seconds=2.0, clients=8)
        await bank.check_books()
        assert len(bank.log) > 200
        await bank.replay(random.Random(5))
        await bank.check_books()
