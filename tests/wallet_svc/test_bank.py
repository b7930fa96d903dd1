"""The bank test: concurrent clients through gRPC; the ledger adds up at every snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import postgres_database
from tests.wallet_svc.helpers import running_wallet
from tests.wallet_svc.workload import Bank


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_bank_adds_up_under_concurrency(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        async with running_wallet(tmp_path) as wallet:
            await _run(Bank(wallet.client, wallet.database_url, seed=11))
        return
    # Two writer lanes: batches on the same rows commit side by side, as two replicas' would.
    async with (
        postgres_database() as url,
        running_wallet(tmp_path, url, CASINO_WRITERS="2") as wallet,
    ):
        await _run(Bank(wallet.client, wallet.database_url, seed=12))


async def _run(bank: Bank) -> None:
    await bank.run(seconds=4.0, clients=16)
    await bank.check_books()
    print(dict(bank.counts), bank.snapshots, len(bank.log))
    assert bank.snapshots >= 5, "the auditor read too few snapshots to mean anything"
    assert bank.counts["stakes accepted"] > 100, bank.counts
    assert bank.counts["rounds settled"] > 5 and bank.counts["rounds refunded"] > 0, bank.counts
    assert bank.counts["refused KYC_REQUIRED"] > 0, bank.counts
    assert bank.counts["stakes rejected"] + bank.counts["refused INSUFFICIENT_FUNDS"] > 0
