"""Studio tables against real RNG, wallet and game processes on the embedded SQLite default.

Studio events apply exactly once per (table, sequence); a gap, a replay with another
payload or a round hash that does not match suspends the table and voids the open round
with full refunds (invariant 7).
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_pb2, game_service_pb2
from casino.ingest.v1 import ingest_pb2
from casino_cli.platform import Platform
from casino_kit.errors import details_of
from game_svc.cards import cards
from tests.game_svc.rounds_helpers import Casino, Events, payload, red, rng_table

pytestmark = pytest.mark.asyncio(loop_scope="module")
STUDIO = "studio-7"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def casino(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Casino]:
    platform = Platform(
        data_dir=tmp_path_factory.mktemp("studio"),
        packages=("rng_svc", "wallet_svc", "game_svc"),
        free_ports=True,
    )
    await platform.start()
    async with (
        grpc.aio.insecure_channel(platform.addresses["game_svc"]) as game,
        grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet,
    ):
        yield Casino(game, wallet)
    await platform.stop()


class Studio:
    """A studio feeding one table: numbered events through ApplyStudioEvent."""

    def __init__(self, casino: Casino, table_id: str) -> None:
        self.casino = casino
        self.table_id = table_id
        self.sequence = itertools.count(1)
        self.round = ""

    def event(self, sequence: int | None = None, **payload: object) -> ingest_pb2.StudioEvent:
        now = Timestamp()
        now.GetCurrentTime()
        return ingest_pb2.StudioEvent(
            studio_id=STUDIO,
            table_id=self.table_id,
            studio_sequence=next(self.sequence) if sequence is None else sequence,
            studio_time=now,
            studio_round_id=self.round,
            **payload,  # type: ignore[arg-type]
        )

    async def send(
        self, event: ingest_pb2.StudioEvent
    ) -> game_service_pb2.ApplyStudioEventResponse:
        return await self.casino.game.ApplyStudioEvent(
            game_service_pb2.ApplyStudioEventRequest(event=event), timeout=20
        )

    async def start(self, game: int) -> game_service_pb2.ApplyStudioEventResponse:
        self.round = f"R-{uuid.uuid4().hex[:6]}"
        return await self.send(self.event(round_start=ingest_pb2.RoundStart(game_type=game)))  # type: ignore[arg-type]

    def result(self, round_hash: str) -> ingest_pb2.StudioEvent:
        return self.event(round_result=table_event_pb2.RoundResult(round_hash=round_hash))


def studio_table(game: int = common_pb2.GAME_TYPE_ROULETTE) -> game_pb2.TableConfig:
    config = rng_table(game=game, name=f"studio {game}", window_s=30)
    config.result_source = game_pb2.RESULT_SOURCE_STUDIO
    config.studio_id = STUDIO
    return config


def hashed(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def refused(studio: Studio, event: ingest_pb2.StudioEvent) -> str | None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await studio.send(event)
    return details_of(error.value).reason


async def test_a_studio_round_settles_once_and_repeats_are_duplicates(casino: Casino) -> None:
    alice = await casino.player(10_000)
    table_id = await casino.table(studio_table())
    events = Events(casino.game, table_id)
    studio = Studio(casino, table_id)
    try:
        started = await studio.start(common_pb2.GAME_TYPE_ROULETTE)
        assert started.status == game_pb2.APPLY_STATUS_APPLIED
        opened = await events.wait_for(payload("round_opened"))
        assert opened.round_id == started.round_id and opened.studio_sequence == 1
        placed = await casino.place(table_id, started.round_id, [(alice, red(1_000))])
        assert placed[0].status == bet_pb2.BET_STATUS_ACCEPTED

        wheel = studio.event(wheel_result=table_event_pb2.WheelResult(pocket=3))  # red
        applied = await studio.send(wheel)
        again = await studio.send(wheel)
        assert again.status == game_pb2.APPLY_STATUS_DUPLICATE
        assert again.table_sequence == applied.table_sequence
        late = await casino.place(table_id, started.round_id, [(alice, red(1_000))])
        assert late[0].reason == "BETTING_CLOSED"  # the ball landed: no more bets

        await studio.send(studio.result(hashed(f"{studio.round}|W3")))
        settled = await events.wait_for(payload("round_settled", started.round_id))
        assert [b.payout.amount_minor for b in settled.round_settled.bets] == [2_000]
        assert await casino.balance(alice) == 11_000
        assert len(events.of(started.round_id, "wheel_result")) == 1
    finally:
        await events.close()


@pytest.mark.parametrize("fault", ["gap", "conflict", "round_hash"])
async def test_a_studio_fault_suspends_the_table_and_refunds_the_round(
    casino: Casino, fault: str
) -> None:
    alice = await casino.player(10_000)
    table_id = await casino.table(studio_table())
    events = Events(casino.game, table_id)
    studio = Studio(casino, table_id)
    try:
        started = await studio.start(common_pb2.GAME_TYPE_ROULETTE)
        await casino.place(table_id, started.round_id, [(alice, red(4_000))])
        assert await casino.balance(alice) == 6_000
        if fault == "gap":
            wrong = studio.event(sequence=5, wheel_result=table_event_pb2.WheelResult(pocket=3))
            expected = "SEQUENCE_GAP"
        elif fault == "conflict":
            wrong = studio.event(sequence=1, round_start=ingest_pb2.RoundStart(game_type=1))
            expected = "SEQUENCE_CONFLICT"
        else:
            await studio.send(studio.event(wheel_result=table_event_pb2.WheelResult(pocket=3)))
            wrong = studio.result(hashed(f"{studio.round}|W4"))
            expected = "ROUND_HASH_MISMATCH"
        assert await refused(studio, wrong) == expected
        voided = await events.wait_for(payload("round_voided", started.round_id))
        assert voided.round_voided.refunded_bet_count == 1
        await events.wait_for(payload("table_suspended"))
        assert await casino.balance(alice) == 10_000
        assert events.of(started.round_id, "round_settled") == []
        table = (
            await casino.game.GetTable(game_service_pb2.GetTableRequest(table_id=table_id))
        ).table
        assert table.summary.status == common_pb2.TABLE_STATUS_SUSPENDED
        # Nothing more is applied until the studio resumes the table (after a gap, the
        # studio goes on past it).
        if fault == "gap":
            studio.sequence = itertools.count(6)
        still = studio.event(wheel_result=table_event_pb2.WheelResult(pocket=3))
        assert await refused(studio, still) == "TABLE_SUSPENDED"
        resumed = await studio.send(studio.event(table_resumed=table_event_pb2.TableResumed()))
        assert resumed.status == game_pb2.APPLY_STATUS_APPLIED
        assert (await studio.start(common_pb2.GAME_TYPE_ROULETTE)).round_id
    finally:
        await events.close()


async def test_baccarat_cards_follow_the_third_card_rules(casino: Casino) -> None:
    bob = await casino.player(10_000)
    table_id = await casino.table(studio_table(common_pb2.GAME_TYPE_BACCARAT))
    events = Events(casino.game, table_id)
    studio = Studio(casino, table_id)
    try:
        started = await studio.start(common_pb2.GAME_TYPE_BACCARAT)
        player_bet = (bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_BACCARAT_PLAYER), 1_000)
        await casino.place(table_id, started.round_id, [(bob, player_bet)])
        # Player 9 (natural) against banker 5: no third card.
        deal = [("P", "9H"), ("B", "2C"), ("P", "KD"), ("B", "3S")]
        targets = {"P": table_event_pb2.CARD_TARGET_PLAYER, "B": table_event_pb2.CARD_TARGET_BANKER}
        for index, (side, text) in enumerate(deal, 1):
            (card,) = cards(text)
            await studio.send(
                studio.event(
                    card_dealt=table_event_pb2.CardDealt(
                        deal_index=index,
                        target=targets[side],
                        card=common_pb2.Card(rank=int(card.rank), suit=int(card.suit)),  # type: ignore[arg-type]
                    )
                )
            )
        (extra,) = cards("4H")
        fifth = studio.event(
            card_dealt=table_event_pb2.CardDealt(
                deal_index=5,
                target=table_event_pb2.CARD_TARGET_BANKER,
                card=common_pb2.Card(rank=int(extra.rank), suit=int(extra.suit)),  # type: ignore[arg-type]
            )
        )
        assert await refused(studio, fifth) == "INVALID_STUDIO_EVENT"  # a natural stands
        assert await refused(studio, fifth) == "INVALID_STUDIO_EVENT"  # the same answer again
        preimage = "|".join(
            [studio.round]
            + [
                f"C{targets[side]}.0.0.{int(card.rank)}.{int(card.suit)}"
                for side, text in deal
                for card in cards(text)
            ]
        )
        await studio.send(studio.result(hashed(preimage)))
        settled = await events.wait_for(payload("round_settled", started.round_id))
        assert [b.payout.amount_minor for b in settled.round_settled.bets] == [2_000]
        assert await casino.balance(bob) == 11_000
    finally:
        await events.close()


async def test_another_studio_is_refused_and_consumes_nothing(casino: Casino) -> None:
    table_id = await casino.table(studio_table())
    studio = Studio(casino, table_id)
    intruder = studio.event(round_start=ingest_pb2.RoundStart(game_type=1))
    intruder.studio_id = "someone-else"
    assert await refused(studio, intruder) == "STUDIO_NOT_AUTHORIZED"
    studio.sequence = itertools.count(1)
    assert (
        await studio.start(common_pb2.GAME_TYPE_ROULETTE)
    ).status == game_pb2.APPLY_STATUS_APPLIED
    rng = await casino.table(rng_table(name="not a studio table"))
    other = Studio(casino, rng)
    assert await refused(other, other.event(round_start=ingest_pb2.RoundStart(game_type=1))) == (
        "STUDIO_NOT_AUTHORIZED"
    )
