"""Bets through two real session processes: checks before the game, one stake per client
bet id whatever node a retry reaches, the player's stream told, excluded players refused."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_service_pb2_grpc
from casino.session.v1 import session_pb2
from casino.session.v1 import session_service_pb2 as pb
from tests.game_svc.rounds_helpers import Casino, Events, payload, rng_table
from tests.session_svc.test_tables import (  # noqa: F401  # the module's fixture
    Deployment,
    auth,
    deployment,
    failure,
    join,
    key,
    player,
    table,
    watch,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def d(deployment: Deployment) -> Deployment:  # noqa: F811
    return deployment


def red(client_bet_id: str, amount: int = 1_000, currency: str = "EUR") -> session_pb2.PlayerBet:
    return session_pb2.PlayerBet(
        client_bet_id=client_bet_id,
        spot=bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_RED),
        stake=common_pb2.Money(amount_minor=amount, currency=currency),
    )


def bets(table_id: str, round_id: str, *placed: session_pb2.PlayerBet) -> pb.PlaceBetsRequest:
    return pb.PlaceBetsRequest(
        idempotency_key=key(), table_id=table_id, round_id=round_id, bets=placed
    )


async def test_a_bet_is_staked_once_whichever_node_the_retry_reaches(d: Deployment) -> None:
    casino = Casino(d.game, d.wallet)
    table_id = await table(d, rng_table(name="session bets", window_s=20))
    events = Events(game_service_pb2_grpc.GameServiceStub(d.game), table_id)
    try:
        who = await player(d, 0)
        await casino.fund(who.account, 10_000)
        await join(d, who, table_id, node=0)
        stream = watch(d, who, table_id, node=1)
        round_id = (await events.wait_for(payload("round_opened"))).round_id

        first = await d.stub(0).PlaceBets(
            bets(table_id, round_id, red("my-1")), metadata=auth(who.token), timeout=10
        )
        again = await d.stub(1).PlaceBets(
            bets(table_id, round_id, red("my-1")), metadata=auth(who.token), timeout=10
        )
        assert first.results[0].status == bet_pb2.BET_STATUS_ACCEPTED
        assert again.results[0].bet_id == first.results[0].bet_id
        assert again.results[0].status == bet_pb2.BET_STATUS_ACCEPTED
        assert first.balance.amount_minor == 9_000
        assert await casino.balance(who.account) == 9_000  # staked once

        told: list[pb.WatchTableResponse] = []
        while not any(m.HasField("bet_accepted") for m in told):
            told.append(await asyncio.wait_for(stream.read(), 10))
        accepted = next(m.bet_accepted for m in told if m.HasField("bet_accepted"))
        assert (accepted.client_bet_id, accepted.round_id) == ("my-1", round_id)
        stream.cancel()
    finally:
        await events.close()


async def test_two_operators_players_of_one_name_share_no_money_and_no_seat(
    d: Deployment,
) -> None:
    """Operators name their players independently: the rival's "alice" neither stakes our
    alice's money nor frees her seat."""
    casino = Casino(d.game, d.wallet)
    table_id = await table(d, rng_table(name="two operators", window_s=20))
    events = Events(game_service_pb2_grpc.GameServiceStub(d.game), table_id)
    try:
        name = f"alice-{key()[:8]}"
        ours, theirs = (
            await player(d, 0, player_id=name),
            await player(d, 1, operator=d.rival, player_id=name),
        )
        assert ours.account != theirs.account
        await casino.fund(ours.account, 10_000)
        await join(d, ours, table_id, node=0)
        await join(d, theirs, table_id, node=1)
        round_id = (await events.wait_for(payload("round_opened"))).round_id

        refused = await d.stub(1).PlaceBets(
            bets(table_id, round_id, red("same-id")), metadata=auth(theirs.token), timeout=10
        )
        assert refused.results[0].status == bet_pb2.BET_STATUS_REJECTED
        assert await casino.balance(ours.account) == 10_000
        details = await failure(
            d.stub(0).GetBalance(pb.GetBalanceRequest(), metadata=auth(theirs.token), timeout=10)
        )
        assert details.reason == "ACCOUNT_NOT_FOUND"

        await d.stub(1).LeaveTable(
            pb.LeaveTableRequest(idempotency_key=key(), table_id=table_id),
            metadata=auth(theirs.token),
            timeout=10,
        )
        placed = await d.stub(0).PlaceBets(
            bets(table_id, round_id, red("same-id")), metadata=auth(ours.token), timeout=10
        )
        assert placed.results[0].status == bet_pb2.BET_STATUS_ACCEPTED
        assert placed.results[0].bet_id != refused.results[0].bet_id
        assert await casino.balance(ours.account) == 9_000
    finally:
        await events.close()


async def test_bets_are_checked_before_they_reach_the_game(d: Deployment) -> None:
    casino = Casino(d.game, d.wallet)
    table_id = await table(d, rng_table(name="session checks", window_s=20))
    events = Events(game_service_pb2_grpc.GameServiceStub(d.game), table_id)
    try:
        round_id = (await events.wait_for(payload("round_opened"))).round_id
        outsider, excluded = await player(d, 0), await player(d, 1)
        for who in (outsider, excluded):
            await casino.fund(who.account, 10_000)
        details = await failure(
            d.stub(0).PlaceBets(
                bets(table_id, round_id, red("x")), metadata=auth(outsider.token), timeout=10
            )
        )
        assert (details.code, details.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "NOT_AT_TABLE",
        )
        await join(d, outsider, table_id)
        for bad, field in (
            (red("y", amount=0), "bets[0].stake.amount_minor"),
            (red("y", currency="USD"), "bets[0].stake.currency"),
            (session_pb2.PlayerBet(client_bet_id="y"), "bets[0].spot"),
        ):
            details = await failure(
                d.stub(1).PlaceBets(
                    bets(table_id, round_id, bad), metadata=auth(outsider.token), timeout=10
                )
            )
            assert details.code == grpc.StatusCode.INVALID_ARGUMENT
            assert field in {v.field for v in details.violations}

        await join(d, excluded, table_id, node=1)
        await d.stub(1).SelfExclude(
            pb.SelfExcludeRequest(idempotency_key=key(), permanent=True),
            metadata=auth(excluded.token),
            timeout=10,
        )
        details = await failure(
            d.stub(0).PlaceBets(
                bets(table_id, round_id, red("z")), metadata=auth(excluded.token), timeout=10
            )
        )
        assert details.code == grpc.StatusCode.UNAUTHENTICATED
        for who in (outsider, excluded):
            assert await casino.balance(who.account) == 10_000  # nothing changed
    finally:
        await events.close()
