"""The crash test: the wallet is SIGKILLed at random moments under load; clients retry with
the same keys; afterwards every request had exactly one effect and the ledger adds up."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

from tests.conftest import postgres_database
from tests.wallet_svc.helpers import RunningWallet, running_wallet
from tests.wallet_svc.workload import Bank

KILLS = 4


async def _kill_and_restart(wallet: RunningWallet, rng: random.Random, kills: list[float]) -> None:
    platform = wallet.platform
    port = int(wallet.address.rsplit(":", 1)[1])
    for _ in range(KILLS):
        await asyncio.sleep(rng.uniform(0.3, 1.0))
        victim = platform.processes["wallet_svc"].process
        victim.send_signal(signal.SIGKILL)
        assert await victim.wait() == -signal.SIGKILL
        kills.append(asyncio.get_running_loop().time())
        await asyncio.sleep(rng.uniform(0.0, 0.2))
        restarted = await platform.spawn("wallet_svc", port=port)
        platform.processes["wallet_svc"] = restarted
        await restarted.wait_serving(30)


async def test_killed_midway_every_request_converges_to_one_effect(tmp_path: Path) -> None:
    kills: list[float] = []
    # Two writer lanes: a kill can land with two transactions in flight.
    async with (
        postgres_database() as url,
        running_wallet(tmp_path, url, CASINO_WRITERS="2") as wallet,
    ):
        bank = Bank(wallet.client, wallet.database_url, seed=31, retry=True)
        rng = random.Random(31)
        await bank.run(
            seconds=3.0, clients=16, during=lambda: _kill_and_restart(wallet, rng, kills)
        )
        assert len(kills) == KILLS
        assert bank.counts["retries"] > 0, "no request was caught by a crash"
        await bank.check_books()
        # Every request, sent once more with its key, finds its one effect already made.
        await bank.replay(random.Random(32))
        await bank.check_books()
