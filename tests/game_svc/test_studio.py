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
from typing import TypedDict

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
        response: game_service_pb2.ApplyStudioEventResponse = (
            await self.casino.game.ApplyStudioEvent(
                game_service_pb2.ApplyStudioEventRequest(event=event), timeout=20
            )
        )
        return response

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
            wrong = studio.event(
                sequence=1,
                round_start=ingest_pb2.RoundStart(game_type=common_pb2.GAME_TYPE_ROULETTE),
            )
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
    intruder = studio.event(
        round_start=ingest_pb2.RoundStart(game_type=common_pb2.GAME_TYPE_ROULETTE)
    )
    intruder.studio_id = "someone-else"
    assert await refused(studio, intruder) == "STUDIO_NOT_AUTHORIZED"
    studio.sequence = itertools.count(1)
    assert (
        await studio.start(common_pb2.GAME_TYPE_ROULETTE)
    ).status == game_pb2.APPLY_STATUS_APPLIED
    rng = await casino.table(rng_table(name="not a studio table"))
    other = Studio(casino, rng)
    foreign = other.event(
        round_start=ingest_pb2.RoundStart(game_type=common_pb2.GAME_TYPE_ROULETTE)
    )
    assert await refused(other, foreign) == "STUDIO_NOT_AUTHORIZED"


class Dealt(TypedDict):
    """The payload of ``Studio.event`` for one card."""

    card_dealt: table_event_pb2.CardDealt


def dealt(
    index: int,
    target: table_event_pb2.CardTarget.ValueType,
    text: str,
    seat: int = 0,
    hand: int = 0,
) -> Dealt:
    (card,) = cards(text)
    message = common_pb2.Card(rank=int(card.rank), suit=int(card.suit))  # type: ignore[arg-type]
    return {
        "card_dealt": table_event_pb2.CardDealt(
            deal_index=index,
            target=target,
            seat=seat,
            hand=hand,
            card=message,
        )
    }


async def test_a_studio_deals_blackjack_where_the_rules_say_and_the_platform_decides(
    casino: Casino,
) -> None:
    alice, bob, carol = [await casino.player(10_000) for _ in range(3)]
    config = studio_table(common_pb2.GAME_TYPE_BLACKJACK)
    config.blackjack.decision_window_seconds = 3
    table_id = await casino.table(config)
    events = Events(casino.game, table_id)
    studio = Studio(casino, table_id)
    seat_spot = bet_pb2.BET_TYPE_BLACKJACK_SEAT
    try:
        started = await studio.start(common_pb2.GAME_TYPE_BLACKJACK)
        round_id = started.round_id
        placed = await casino.place(
            table_id,
            round_id,
            [
                (alice, (bet_pb2.BetSpot(bet_type=seat_spot, seat=1), 1_000)),
                (bob, (bet_pb2.BetSpot(bet_type=seat_spot, seat=2), 1_000)),
                (
                    carol,
                    (bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_BLACKJACK_BET_BEHIND, seat=1), 500),
                ),
            ],
        )
        assert all(r.status == bet_pb2.BET_STATUS_ACCEPTED for r in placed), placed
        seat, dealer = table_event_pb2.CARD_TARGET_SEAT, table_event_pb2.CARD_TARGET_DEALER
        wrong = studio.event(**dealt(1, dealer, "8C"))
        assert await refused(studio, wrong) == "INVALID_STUDIO_EVENT"  # seat 1 is dealt first
        for index, target, text, at in (
            (1, seat, "8C", 1),
            (2, seat, "5D", 2),
            (3, dealer, "9H", 0),
            (4, seat, "8D", 1),
            (5, seat, "KS", 2),
        ):
            await studio.send(studio.event(**dealt(index, target, text, at, 1 if at else 0)))
        (hole,) = cards("7C")
        hole_card = common_pb2.Card(rank=int(hole.rank), suit=int(hole.suit))  # type: ignore[arg-type]
        await studio.send(
            studio.event(
                card_dealt=table_event_pb2.CardDealt(
                    deal_index=6, target=dealer, face_down=True, scanned_card=hole_card
                )
            )
        )
        await events.wait_for(lambda e: e.HasField("decision_requested") and e.round_id == round_id)
        published = [e.card_dealt for e in events.of(round_id, "card_dealt")]
        assert published[-1].face_down and not published[-1].HasField("scanned_card")

        async def decide(action: int, hand: int, extra: str = "") -> None:
            await casino.game.SubmitDecision(
                game_service_pb2.SubmitDecisionRequest(
                    idempotency_key=uuid.uuid4().hex,
                    table_id=table_id,
                    round_id=round_id,
                    player_id=alice,
                    seat=1,
                    hand=hand,
                    action=action,  # type: ignore[arg-type]
                    extra_bet_id=extra,
                ),
                timeout=10,
            )

        await decide(bet_pb2.BLACKJACK_ACTION_SPLIT, 1, "split-1")
        early = studio.event(**dealt(7, seat, "3H", 1, 2))
        assert await refused(studio, early) == "INVALID_STUDIO_EVENT"  # hand 1 gets its card first
        await studio.send(studio.event(**dealt(7, seat, "3H", 1, 1)))
        await decide(bet_pb2.BLACKJACK_ACTION_DOUBLE, 1, "double-1")
        await studio.send(studio.event(**dealt(8, seat, "9S", 1, 1)))
        await studio.send(studio.event(**dealt(9, seat, "2C", 1, 2)))
        await events.wait_for(
            lambda e: e.HasField("decision_requested") and e.decision_requested.hand == 2
        )
        await decide(bet_pb2.BLACKJACK_ACTION_STAND, 2)
        # bob says nothing: STAND is applied when his time runs out.
        await events.wait_for(
            lambda e: e.HasField("decision_made") and e.decision_made.seat == 2, timeout=15
        )
        before_reveal = studio.event(**dealt(10, dealer, "6S"))
        assert await refused(studio, before_reveal) == "INVALID_STUDIO_EVENT"
        await studio.send(
            studio.event(card_revealed=table_event_pb2.CardRevealed(deal_index=6, card=hole_card))
        )
        await studio.send(studio.event(**dealt(10, dealer, "6S")))
        order = [
            (seat, 1, 1, "8C"),
            (seat, 2, 1, "5D"),
            (dealer, 0, 0, "9H"),
            (seat, 1, 1, "8D"),
            (seat, 2, 1, "KS"),
            (dealer, 0, 0, "7C"),
            (seat, 1, 1, "3H"),
            (seat, 1, 1, "9S"),
            (seat, 1, 2, "2C"),
            (dealer, 0, 0, "6S"),
        ]
        preimage = "|".join(
            [studio.round]
            + [
                f"C{target}.{at}.{hand}.{int(card.rank)}.{int(card.suit)}"
                for target, at, hand, text in order
                for card in cards(text)
            ]
        )
        await studio.send(studio.result(hashed(preimage)))
        settled = await events.wait_for(payload("round_settled", round_id))
        paid = {b.bet_id: b.payout.amount_minor for b in settled.round_settled.bets}
        assert paid["split-1"] == paid["double-1"] == 2_000  # 20 and 20 against a busted dealer
        made = [e.decision_made for e in events.of(round_id, "decision_made")]
        assert [(d.seat, d.automatic) for d in made if d.seat == 2] == [(2, True)]
        assert await casino.balance(alice) == 10_000 + 3_000  # three stakes of 1,000 won
        assert await casino.balance(bob) == 11_000
        assert await casino.balance(carol) == 10_500  # behind hand 1, not its double
    finally:
        await events.close()
