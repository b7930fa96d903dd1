"""Two wallet replicas on one PostgreSQL ledger: the same request sent to both has one effect
and one answer; concurrent requests on the same accounts serialise on their rows."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from casino.wallet.v1 import wallet_pb2, wallet_service_pb2
from tests.conftest import postgres_database
from tests.wallet_svc.helpers import eur, key, running_wallet, snapshot

ws = wallet_service_pb2
PLAYERS = [f"replica-p{i}" for i in range(10)]


async def test_two_replicas_share_one_ledger(tmp_path: Path) -> None:
    async with (
        postgres_database() as url,
        running_wallet(tmp_path / "a", url) as a,
        running_wallet(tmp_path / "b", url) as b,
    ):
        expected = dict.fromkeys(PLAYERS, 0)
        for player in PLAYERS:
            request = ws.OpenAccountRequest(
                idempotency_key=f"open-{player}", player_id=player, currency="EUR"
            )
            first, second = await asyncio.gather(
                a.client.wallet.OpenAccount(request), b.client.wallet.OpenAccount(request)
            )
            assert first == second

        # Deposits on the same accounts from both replicas at once: they wait for each other.
        deposits = [(PLAYERS[i % len(PLAYERS)], 10 + i) for i in range(200)]
        await asyncio.gather(
            *(
                (a if i % 2 else b).client.deposit(player, amount)
                for i, (player, amount) in enumerate(deposits)
            )
        )
        for player, amount in deposits:
            expected[player] += amount

        for round_number in range(12):
            round_id = f"replica-round-{round_number}-{uuid.uuid4().hex[:6]}"
            stakes = [
                ws.PlaceStakesRequest(
                    idempotency_key=key(),
                    table_id="replica-table",
                    round_id=round_id,
                    fencing_token=1,
                    stakes=[wallet_pb2.Stake(bet_id=f"{round_id}-{p}", player_id=p, amount=eur(7))],
                )
                for p in PLAYERS
            ]
            replies = await asyncio.gather(
                *(r.client.wallet.PlaceStakes(s) for s in stakes for r in (a, b))
            )
            for index, player in enumerate(PLAYERS):
                mine, twin = replies[2 * index], replies[2 * index + 1]
                assert mine.SerializeToString() == twin.SerializeToString()
                assert mine.results[0].status == wallet_pb2.STAKE_STATUS_ACCEPTED
                expected[player] -= 7
            payout = 14 if round_number % 2 else 0
            settle = ws.SettleRoundRequest(
                idempotency_key=f"settle-{round_id}",
                table_id="replica-table",
                round_id=round_id,
                fencing_token=1,
                payouts=[
                    wallet_pb2.Payout(bet_id=f"{round_id}-{p}", player_id=p, payout=eur(payout))
                    for p in PLAYERS
                ],
            )
            first, second = await asyncio.gather(
                a.client.wallet.SettleRound(settle), b.client.wallet.SettleRound(settle)
            )
            assert first.SerializeToString() == second.SerializeToString()
            for player in PLAYERS:
                expected[player] += payout

        for player, balance in expected.items():
            assert await a.client.balance(player) == balance
            assert await b.client.balance(player) == balance
        final = await snapshot(url)
        final.assert_conserved()
        assert final.rows["bets"] == 12 * len(PLAYERS)
        assert (await a.client.reconcile()).ok
