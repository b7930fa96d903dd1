"""The full path with real processes: 200 players bet through session_svc on an RNG roulette
table for 20 rounds; every accepted bet is settled once, every win credited, and the
wallet's books balance."""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from casino.common.v1 import bet_pb2
from casino.game.v1 import game_service_pb2
from casino.session.v1 import session_pb2, session_service_pb2, session_service_pb2_grpc
from casino.wallet.v1 import wallet_service_pb2
from casino_cli.platform import Platform
from game_svc import roulette
from game_svc.bets import BetType, Spot
from session_svc.tokens import platform_player_id
from tests.conftest import REDIS_URL
from tests.game_svc.rounds_helpers import Casino, Events, eur, on_postgres, payload, rng_table
from tests.session_svc.operator import Operator, operator_keys_json

# 20 rounds with the shortest betting window (5 s) take about 110 s on their own.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

PLAYERS, ROUNDS, DEPOSIT = 200, 20, 100_000
OPERATOR = Operator("full-path")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    session = {
        "CASINO_REDIS_URL": REDIS_URL,
        "CASINO_KEY_PREFIX": f"casino:test:{uuid.uuid4().hex[:8]}:",
        "CASINO_SESSION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "CASINO_OPERATOR_KEYS": operator_keys_json(OPERATOR),
        "CASINO_RATE_PER_S": "100",
    }
    async with on_postgres(
        tmp_path_factory.mktemp("full-path"),
        ("rng_svc", "wallet_svc", "game_svc", "session_svc"),
        session_svc=session,
    ) as running:
        yield running


class Player:
    def __init__(self, player_id: str, session: session_service_pb2_grpc.SessionServiceStub):
        self.player_id = player_id
        self.account = platform_player_id(OPERATOR.operator_id, player_id)
        self.session = session
        self.token = ""
        self.accepted: dict[str, tuple[str, bet_pb2.BetSpot, int]] = {}
        """bet id -> (round id, spot, stake)"""

    def auth(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.token}"),)

    async def join(self, table_id: str) -> None:
        opened = await self.session.OpenSession(
            session_service_pb2.OpenSessionRequest(
                idempotency_key=uuid.uuid4().hex,
                operator_id=OPERATOR.operator_id,
                launch_token=OPERATOR.launch_token(self.player_id),
            ),
            timeout=20,
        )
        self.token = opened.session_token
        await self.session.JoinTable(
            session_service_pb2.JoinTableRequest(
                idempotency_key=uuid.uuid4().hex, table_id=table_id
            ),
            metadata=self.auth(),
            timeout=20,
        )

    async def bet(self, table_id: str, round_id: str) -> None:
        spot = random.choice(
            [
                bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_RED),
                bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_BLACK),
                bet_pb2.BetSpot(
                    bet_type=bet_pb2.BET_TYPE_ROULETTE_STRAIGHT, numbers=[random.randint(0, 36)]
                ),
            ]
        )
        stake = random.choice([100, 500, 1_000])
        request = session_service_pb2.PlaceBetsRequest(
            idempotency_key=uuid.uuid4().hex,
            table_id=table_id,
            round_id=round_id,
            bets=[
                session_pb2.PlayerBet(client_bet_id=uuid.uuid4().hex, spot=spot, stake=eur(stake))
            ],
        )
        answer = await self.session.PlaceBets(request, metadata=self.auth(), timeout=20)
        (result,) = answer.results
        if result.status == bet_pb2.BET_STATUS_ACCEPTED:
            self.accepted[result.bet_id] = (round_id, spot, stake)
        else:
            assert result.reason == "BETTING_CLOSED", result


async def test_every_accepted_bet_is_settled_once_and_the_books_balance(platform: Platform) -> None:
    async with (
        grpc.aio.insecure_channel(platform.addresses["game_svc"]) as game,
        grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet,
        grpc.aio.insecure_channel(platform.addresses["session_svc"]) as session_channel,
    ):
        casino = Casino(game, wallet)
        session = session_service_pb2_grpc.SessionServiceStub(session_channel)
        table_id = await casino.table(rng_table(name="full path", window_s=5))
        players = [Player(f"p-{n}-{uuid.uuid4().hex[:8]}", session) for n in range(PLAYERS)]
        for player in players:
            await casino.fund(player.account, DEPOSIT)
        gate = asyncio.Semaphore(32)

        async def join(player: Player) -> None:
            async with gate:
                await player.join(table_id)

        await asyncio.gather(*(join(p) for p in players))
        events = Events(casino.game, table_id)
        try:
            played: list[str] = []
            while len(played) < ROUNDS:
                opened = await events.wait_for(
                    lambda e: (
                        e.WhichOneof("payload") == "round_opened" and e.round_id not in played
                    ),
                    timeout=30,
                )
                played.append(opened.round_id)
                await asyncio.gather(*(p.bet(table_id, opened.round_id) for p in players))
            await events.wait_for(payload("round_settled", played[-1]), timeout=30)

            settled = {}
            for round_id in played:
                record = (
                    await casino.game.GetRound(game_service_pb2.GetRoundRequest(round_id=round_id))
                ).round
                assert record.phase == 4, record  # SETTLED
                parts = events.of(round_id, "round_settled")
                for event in parts:
                    for bet in event.round_settled.bets:
                        assert bet.bet_id not in settled, "a bet settled twice"
                        settled[bet.bet_id] = (
                            record.result.roulette.pocket,
                            bet.payout.amount_minor,
                        )
            accepted = {bet_id: bet for p in players for bet_id, bet in p.accepted.items()}
            assert len(accepted) > PLAYERS * ROUNDS // 2
            assert set(settled) == set(accepted), "every accepted bet is settled, no other"
            for player in players:
                expected = DEPOSIT
                for bet_id, (_, spot, stake) in player.accepted.items():
                    pocket, paid = settled[bet_id]
                    win = roulette.settle(
                        Spot(BetType(spot.bet_type), tuple(spot.numbers)), stake, pocket
                    ).payout
                    assert paid == win
                    expected += paid - stake
                assert await casino.balance(player.account) == expected
            report = await casino.wallet_admin.Reconcile(
                wallet_service_pb2.ReconcileRequest(), timeout=30
            )
            assert all(c.ok for c in report.currencies), report
        finally:
            await events.close()
