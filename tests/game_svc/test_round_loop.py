"""RNG rounds against real RNG, wallet and game processes on PostgreSQL.

A round opens with a commitment, takes bets by server time, closes, draws, settles through
the wallet once, and starts again; killing the game process in any phase ends every round
settled or voided with full refunds, and the wallet's books still balance.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_service_pb2
from casino_cli.platform import Platform
from game_svc import roulette
from game_svc.bets import BetType, Spot
from tests.game_svc.rounds_helpers import (
    Casino,
    Events,
    key,
    on_postgres,
    payload,
    red,
    rng_table,
    straight,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    data_dir = tmp_path_factory.mktemp("rounds")
    async with on_postgres(data_dir, ("rng_svc", "wallet_svc", "game_svc")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def casino(platform: Platform) -> AsyncIterator[Casino]:
    async with (
        grpc.aio.insecure_channel(platform.addresses["game_svc"]) as game,
        grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet,
    ):
        yield Casino(game, wallet)


async def test_a_round_takes_bets_in_time_settles_once_and_proves_its_result(
    casino: Casino,
) -> None:
    alice, bob, broke = (
        await casino.player(100_000),
        await casino.player(100_000),
        await casino.player(0),
    )
    table_id = await casino.table(rng_table())
    events = Events(casino.game, table_id)
    try:
        opened = await events.wait_for(payload("round_opened"))
        round_id = opened.round_id
        assert opened.round_opened.commitment.commitment
        placed = await casino.place(
            table_id,
            round_id,
            [(alice, red(1_000)), (alice, straight(17, 200)), (bob, red(5_000)), (broke, red())],
        )
        assert [r.status for r in placed] == [bet_pb2.BET_STATUS_ACCEPTED] * 3 + [
            bet_pb2.BET_STATUS_REJECTED
        ]
        assert placed[3].reason == "INSUFFICIENT_FUNDS"
        assert placed[0].balance_after.amount_minor == 99_000
        assert await casino.balance(alice) == 100_000 - 1_200

        await events.wait_for(payload("bets_closed", round_id))
        late = await casino.place(table_id, round_id, [(alice, red())])
        assert (late[0].status, late[0].reason) == (bet_pb2.BET_STATUS_REJECTED, "BETTING_CLOSED")

        settled = await events.wait_for(payload("round_settled", round_id))
        result = events.of(round_id, "round_result")[0].round_result
        pocket = result.roulette.pocket
        paid = {b.bet_id: b.payout.amount_minor for b in settled.round_settled.bets}
        expected = {
            r.bet_id: roulette.settle(
                Spot(BetType(spot.bet_type), tuple(spot.numbers)), stake, pocket
            ).payout
            for r, (_, (spot, stake)) in zip(
                placed[:3],
                [(alice, red(1_000)), (alice, straight(17, 200)), (bob, red(5_000))],
                strict=True,
            )
        }
        assert paid == expected
        assert (
            await casino.balance(alice)
            == 100_000 - 1_200 + paid[placed[0].bet_id] + paid[placed[1].bet_id]
        )

        recalled = (
            await casino.game.GetRound(game_service_pb2.GetRoundRequest(round_id=round_id))
        ).round
        assert recalled.phase == common_pb2.ROUND_PHASE_SETTLED
        assert recalled.result.roulette.pocket == pocket
        proof = recalled.proof
        assert list(proof.outcome) == [pocket]
        assert proof.commitment == opened.round_opened.commitment.commitment
        assert hashlib.sha256(bytes.fromhex(proof.server_seed)).hexdigest() == proof.commitment
        accepted = [b for b in recalled.bets if b.status == bet_pb2.BET_STATUS_ACCEPTED]
        assert {b.bet.bet_id: b.payout.amount_minor for b in accepted} == expected
        assert len(recalled.bets) == 5  # the rejected ones are kept for recall too

        # A repeat of an accepted bet after the round answers the first answer again.
        again = await casino.place(
            table_id, round_id, [(alice, red(1_000))], bet_ids=[placed[0].bet_id]
        )
        assert again[0].status == bet_pb2.BET_STATUS_ACCEPTED
        await events.wait_for(
            lambda e: e.WhichOneof("payload") == "round_opened" and e.round_id != round_id
        )
    finally:
        await events.close()


async def test_a_repeated_bet_is_staked_once(casino: Casino) -> None:
    alice = await casino.player(10_000)
    table_id = await casino.table(rng_table(name="repeats"))
    events = Events(casino.game, table_id)
    try:
        round_id = (await events.wait_for(payload("round_opened"))).round_id
        bet_id = key()
        answers = await asyncio.gather(
            *(
                casino.place(table_id, round_id, [(alice, red(1_000))], bet_ids=[bet_id])
                for _ in range(5)
            )
        )
        assert {a[0].status for a in answers} == {bet_pb2.BET_STATUS_ACCEPTED}
        assert await casino.balance(alice) == 9_000
        other = await casino.place(table_id, round_id, [(alice, red(2_000))], bet_ids=[bet_id])
        assert other[0].reason == "IDEMPOTENCY_KEY_REUSED"
        assert await casino.balance(alice) == 9_000
    finally:
        await events.close()


@pytest.mark.parametrize("phase", ["round_opened", "bets_closed", "round_result"])
async def test_killing_the_game_in_any_phase_ends_the_round_once_and_keeps_the_books(
    platform: Platform, casino: Casino, phase: str
) -> None:
    players = [await casino.player(50_000) for _ in range(4)]
    table_id = await casino.table(rng_table(name=f"kill at {phase}"))
    events = Events(casino.game, table_id)
    try:
        round_id = (await events.wait_for(payload("round_opened"))).round_id
        placed = await casino.place(table_id, round_id, [(p, red(2_000)) for p in players])
        assert all(r.status == bet_pb2.BET_STATUS_ACCEPTED for r in placed)
        await events.wait_for(payload(phase, round_id))
        game = platform.processes["game_svc"]
        game.process.send_signal(signal.SIGKILL)
        await game.process.wait()
        platform.processes["game_svc"] = await platform.spawn("game_svc")
        await platform.processes["game_svc"].wait_serving(30)

        ended = await events.wait_for(
            lambda e: (
                e.round_id == round_id
                and e.WhichOneof("payload") in ("round_settled", "round_voided")
            ),
            timeout=60,
        )
        balances = [await casino.balance(p) for p in players]
        if ended.HasField("round_voided"):
            assert balances == [50_000] * 4  # every stake refunded
            assert ended.round_voided.refunded_bet_count == 4
        else:
            pocket = events.of(round_id, "round_result")[0].round_result.roulette.pocket
            won = roulette.settle(Spot(BetType.ROULETTE_RED), 2_000, pocket).payout
            assert balances == [48_000 + won] * 4
        # Exactly one end, and the next round runs.
        await events.wait_for(
            lambda e: e.WhichOneof("payload") == "round_opened" and e.round_id != round_id,
            timeout=30,
        )
        ends = events.of(round_id, "round_settled") + events.of(round_id, "round_voided")
        assert len(ends) == 1
        report = await casino.reconcile()
        assert all(c.ok for c in report.currencies), report
    finally:
        await events.close()


async def test_an_operator_void_refunds_every_stake(casino: Casino) -> None:
    alice = await casino.player(10_000)
    table_id = await casino.table(rng_table(name="void", window_s=30))
    events = Events(casino.game, table_id)
    try:
        round_id = (await events.wait_for(payload("round_opened"))).round_id
        await casino.place(table_id, round_id, [(alice, red(3_000))])
        assert await casino.balance(alice) == 7_000
        request = game_service_pb2.VoidRoundRequest(
            idempotency_key=key(),
            operator_id="op",
            reason="wheel fault",
            table_id=table_id,
            round_id=round_id,
        )
        voided = await casino.admin.VoidRound(request, timeout=20)
        assert voided.refunded_bet_count == 1
        assert voided.total_refunded.amount_minor == 3_000
        assert await casino.balance(alice) == 10_000
        assert await casino.admin.VoidRound(request, timeout=20) == voided  # replayed
        late = await casino.place(table_id, round_id, [(alice, red())])
        assert late[0].reason == "BETTING_CLOSED"
        event = await events.wait_for(payload("round_voided", round_id))
        assert event.round_voided.detail == "wheel fault"
        assert events.of(round_id, "round_settled") == []
    finally:
        await events.close()
