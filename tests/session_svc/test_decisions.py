"""Blackjack decisions through two real session processes: relayed to the game, the extra
stake of a DOUBLE taken once whichever node a retry reaches, bad calls refused."""

from __future__ import annotations

import grpc
import pytest

from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_service_pb2_grpc
from casino.session.v1 import session_pb2
from casino.session.v1 import session_service_pb2 as pb
from casino_cli.demo import table_config
from tests.game_svc.rounds_helpers import Casino, Events, first_of, payload
from tests.session_svc.test_tables import (  # noqa: F401  # the module's fixture
    Deployment,
    auth,
    deployment,
    failure,
    join,
    key,
    player,
    table,
)

pytestmark = pytest.mark.redis

DOUBLE, STAND = bet_pb2.BLACKJACK_ACTION_DOUBLE, bet_pb2.BLACKJACK_ACTION_STAND


@pytest.fixture
def d(deployment: Deployment) -> Deployment:  # noqa: F811
    return deployment


def decide(
    table_id: str, round_id: str, hand: int, action: int, idem: str = ""
) -> pb.SubmitDecisionRequest:
    return pb.SubmitDecisionRequest(
        idempotency_key=idem or key(),
        table_id=table_id,
        round_id=round_id,
        seat=1,
        hand=hand,
        action=action,  # type: ignore[arg-type]
    )


async def test_a_double_is_staked_once_whichever_node_the_retry_reaches(d: Deployment) -> None:
    casino = Casino(d.game, d.wallet)
    config = table_config("session blackjack", common_pb2.GAME_TYPE_BLACKJACK, 5, decision_s=10)
    table_id = await table(d, config)
    events = Events(game_service_pb2_grpc.GameServiceStub(d.game), table_id)
    try:
        who, outsider = await player(d, 0), await player(d, 1)
        await casino.fund(who.account, 10_000)
        await join(d, who, table_id, seat=1, node=0)
        for _ in range(6):  # until a round asks for a decision that allows DOUBLE
            opened = await events.wait_for(
                lambda e: e.HasField("round_opened") and not events.of(e.round_id, "bets_closed")
            )
            round_id = opened.round_id
            before = await casino.balance(who.account)
            placed = await d.stub(0).PlaceBets(
                pb.PlaceBetsRequest(
                    idempotency_key=key(),
                    table_id=table_id,
                    round_id=round_id,
                    bets=[
                        session_pb2.PlayerBet(
                            client_bet_id=key(),
                            spot=bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_BLACKJACK_SEAT, seat=1),
                            stake=common_pb2.Money(amount_minor=1_000, currency="EUR"),
                        )
                    ],
                ),
                metadata=auth(who.token),
                timeout=10,
            )
            assert placed.results[0].status == bet_pb2.BET_STATUS_ACCEPTED
            asked = await events.wait_for(first_of(round_id), timeout=30)
            if (
                asked.HasField("decision_requested")
                and DOUBLE in asked.decision_requested.allowed_actions
            ):
                break
            await events.wait_for(payload("round_settled", round_id), timeout=60)
        else:
            pytest.fail("no round let the player double in six rounds")

        # Someone who did not join, and a malformed call, are refused before the game.
        details = await failure(
            d.stub(1).SubmitDecision(
                decide(table_id, round_id, 1, STAND), metadata=auth(outsider.token)
            )
        )
        assert (details.code, details.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "NOT_AT_TABLE",
        )
        details = await failure(
            d.stub(1).SubmitDecision(decide(table_id, round_id, 1, 9), metadata=auth(who.token))
        )
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "action" in {v.field for v in details.violations}

        call = decide(table_id, round_id, asked.decision_requested.hand, DOUBLE)
        first = await d.stub(1).SubmitDecision(call, metadata=auth(who.token), timeout=10)
        again = await d.stub(0).SubmitDecision(call, metadata=auth(who.token), timeout=10)
        assert first == again
        assert first.extra_stake.amount_minor == 1_000
        assert first.balance.amount_minor == before - 2_000
        assert await casino.balance(who.account) == before - 2_000  # the double staked once

        # A second decision on the finished hand is the game's refusal, relayed.
        details = await failure(
            d.stub(0).SubmitDecision(decide(table_id, round_id, 1, STAND), metadata=auth(who.token))
        )
        assert (details.code, details.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "DECISION_NOT_EXPECTED",
        )
        settled = await events.wait_for(payload("round_settled", round_id), timeout=60)
        mine = [b for b in settled.round_settled.bets if b.player_id == who.account]
        assert len(mine) == 2  # the seat bet and the double's extra bet
        change = sum(b.payout.amount_minor - b.stake.amount_minor for b in mine)
        assert await casino.balance(who.account) == before + change
    finally:
        await events.close()
