"""RNG blackjack rounds against real RNG, wallet and game processes on PostgreSQL.

Cards come from the shoe the RNG committed to before betting closed, in order; decisions are
asked for with a deadline and STAND is applied when it passes; DOUBLE stakes its extra bet
at the wallet (refused without funds); every bet settles once by the published hands; a game
killed while waiting for a decision voids the round and refunds every stake, extras too.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_service_pb2
from casino.wallet.v1 import wallet_service_pb2
from casino_cli.demo import table_config
from casino_cli.platform import Platform
from casino_kit.errors import details_of
from game_svc import blackjack
from game_svc.blackjack import Hand
from game_svc.cards import Shoe
from game_svc.results import card_of
from game_svc.round_hash import DealtCard, Target, round_hash
from rng_svc import fairness
from tests.game_svc.rounds_helpers import (
    Casino,
    Events,
    eur,
    first_of,
    key,
    on_postgres,
    payload,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

HIT, STAND, DOUBLE, INSURANCE = (
    bet_pb2.BLACKJACK_ACTION_HIT,
    bet_pb2.BLACKJACK_ACTION_STAND,
    bet_pb2.BLACKJACK_ACTION_DOUBLE,
    bet_pb2.BLACKJACK_ACTION_INSURANCE,
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    data_dir = tmp_path_factory.mktemp("blackjack")
    async with on_postgres(data_dir, ("rng_svc", "wallet_svc", "game_svc")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def casino(platform: Platform) -> AsyncIterator[Casino]:
    async with (
        grpc.aio.insecure_channel(platform.addresses["game_svc"]) as game,
        grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet,
    ):
        yield Casino(game, wallet)


def seat(number: int, stake: int = 1_000) -> tuple[bet_pb2.BetSpot, int]:
    return bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_BLACKJACK_SEAT, seat=number), stake


def behind(number: int, stake: int = 500) -> tuple[bet_pb2.BetSpot, int]:
    return bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_BLACKJACK_BET_BEHIND, seat=number), stake


def decision(
    table_id: str,
    round_id: str,
    player: str,
    seat_number: int,
    hand: int,
    action: int,
    extra: str = "",
) -> game_service_pb2.SubmitDecisionRequest:
    return game_service_pb2.SubmitDecisionRequest(
        idempotency_key=key(),
        table_id=table_id,
        round_id=round_id,
        player_id=player,
        seat=seat_number,
        hand=hand,
        action=action,  # type: ignore[arg-type]
        extra_bet_id=extra,
    )


@dataclass
class Seat:
    """A seated test player and what it should do when asked."""

    player: str
    number: int
    # actions to try, in order; then STAND
    plan: list[bet_pb2.BlackjackAction.ValueType] = field(default_factory=list)
    answers: list[tuple[game_service_pb2.SubmitDecisionRequest, object]] = field(
        default_factory=list
    )


async def play(
    casino: Casino, events: Events, table_id: str, round_id: str, seats: list[Seat]
) -> table_event_pb2.TableEvent:
    """Answer each DecisionRequested of ``seats`` (insurance declined) until the round ends."""
    by_number = {s.number: s for s in seats}
    handled = 0
    while True:
        end = events.of(round_id, "round_settled") + events.of(round_id, "round_voided")
        if end:
            return end[0]
        asked = events.of(round_id, "decision_requested")
        for event in asked[handled:]:
            request = event.decision_requested
            me = by_number.get(request.seat)
            if me is None:
                continue
            if INSURANCE in request.allowed_actions:
                action = STAND
            else:
                action = next((a for a in me.plan if a in request.allowed_actions), STAND)
                if action in me.plan:
                    me.plan.remove(action)
            extra = key() if action == DOUBLE else ""
            call = decision(
                table_id, round_id, me.player, request.seat, request.hand, action, extra
            )
            try:
                me.answers.append((call, await casino.game.SubmitDecision(call, timeout=10)))
            except grpc.aio.AioRpcError as error:
                me.answers.append((call, error))
                if action != STAND:  # refused: take the default instead, in time
                    retry = decision(
                        table_id, round_id, me.player, request.seat, request.hand, STAND
                    )
                    me.answers.append((retry, await casino.game.SubmitDecision(retry, timeout=10)))
        handled = len(asked)
        await asyncio.sleep(0.05)


def published_cards(events: list[table_event_pb2.TableEvent]) -> dict[int, DealtCard]:
    """Every card of the round by deal index, the hole card by its revealed value."""
    cards: dict[int, DealtCard] = {}
    for event in events:
        if event.HasField("card_dealt") and not event.card_dealt.face_down:
            c = event.card_dealt
            cards[c.deal_index] = DealtCard(
                c.deal_index, Target(c.target), card_of(c.card), c.seat, c.hand
            )
        elif event.HasField("card_revealed"):
            index = event.card_revealed.deal_index
            cards[index] = DealtCard(index, Target.DEALER, card_of(event.card_revealed.card))
    return cards


async def test_a_round_deals_from_the_committed_shoe_asks_decisions_and_settles_once(
    casino: Casino,
) -> None:
    alice, bob, carol = [await casino.player(100_000) for _ in range(3)]
    dave = await casino.player(1_000)  # exactly his seat bet: a double is refused
    table_id = await casino.table(
        table_config("blackjack", common_pb2.GAME_TYPE_BLACKJACK, 5, decision_s=3)
    )
    events = Events(casino.game, table_id)
    try:
        for _ in range(6):  # until a round where alice doubles (naturals skip decisions)
            opened = await events.wait_for(
                lambda e: e.HasField("round_opened") and not events.of(e.round_id, "bets_closed")
            )
            round_id = opened.round_id
            if (short := 1_000 - await casino.balance(dave)) > 0:  # he lost the last round
                await casino.wallet.Deposit(
                    wallet_service_pb2.DepositRequest(
                        idempotency_key=key(), player_id=dave, amount=eur(short)
                    ),
                    timeout=10,
                )
            funded = {p: await casino.balance(p) for p in (alice, bob, carol, dave)}
            placed = await casino.place(
                table_id,
                round_id,
                [(alice, seat(1)), (bob, seat(2)), (carol, behind(1)), (dave, seat(3))],
            )
            assert all(r.status == bet_pb2.BET_STATUS_ACCEPTED for r in placed), placed
            seats = [Seat(alice, 1, [DOUBLE]), Seat(dave, 3, [DOUBLE])]
            ended = await asyncio.wait_for(
                play(casino, events, table_id, round_id, seats), timeout=60
            )
            assert ended.HasField("round_settled")
            if any(
                isinstance(answer, game_service_pb2.SubmitDecisionResponse)
                and answer.action == DOUBLE
                for _, answer in seats[0].answers
            ):
                break
        else:
            pytest.fail("alice never got to double in six rounds")
        await events.wait_for(payload("round_settled", round_id))
        round_events = [e for e in events.seen if e.round_id == round_id]

        # The cards are the committed shoe's, in order, and anyone can re-derive it.
        recalled = (
            await casino.game.GetRound(game_service_pb2.GetRoundRequest(round_id=round_id))
        ).round
        proof = recalled.proof
        assert proof.commitment == opened.round_opened.commitment.commitment
        seed = bytes.fromhex(proof.server_seed)
        assert hashlib.sha256(seed).hexdigest() == proof.commitment
        assert list(proof.outcome) == fairness.shoe(seed, round_id, proof.client_seed, 8)
        shoe = Shoe.from_indexes(proof.outcome, 8)
        cards = published_cards(round_events)
        assert sorted(cards) == list(range(1, len(cards) + 1))
        assert [cards[i].card for i in sorted(cards)] == [shoe.deal() for _ in cards]
        result = events.of(round_id, "round_result")[0].round_result
        assert result.round_hash == round_hash(round_id, cards.values())

        # Decisions: bob never answered, so each time he was asked (the insurance offer when
        # the dealer shows an ace, then his hand) STAND was applied when time ran out; dave's
        # double was refused for funds, his STAND was taken.
        made = [e.decision_made for e in events.of(round_id, "decision_made")]
        asked = events.of(round_id, "decision_requested")
        bob_asked = [e for e in asked if e.decision_requested.seat == 2]
        bob_made = [(d.action, d.automatic) for d in made if d.seat == 2]
        assert bob_made == [(STAND, True)] * len(bob_asked)
        assert any(d.seat == 1 and d.action == DOUBLE and not d.automatic for d in made)
        for call, answer in seats[1].answers:
            if isinstance(answer, grpc.aio.AioRpcError):
                assert call.action == DOUBLE
                assert answer.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert details_of(answer).reason == "INSUFFICIENT_FUNDS"

        # A decision on someone else's hand, or after the round, is refused.
        with pytest.raises(grpc.aio.AioRpcError) as refused_call:
            await casino.game.SubmitDecision(decision(table_id, round_id, bob, 1, 1, STAND))
        assert refused_call.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        # The double's answer repeats, byte for byte, without a second debit.
        call, first = next(
            (c, a)
            for c, a in seats[0].answers
            if isinstance(a, game_service_pb2.SubmitDecisionResponse) and a.action == DOUBLE
        )
        assert first.extra_stake.amount_minor == 1_000
        assert await casino.game.SubmitDecision(call) == first

        # Every bet settled once, as the published hands say; balances follow.
        settled = {
            bet.bet_id: bet
            for e in events.of(round_id, "round_settled")
            for bet in e.round_settled.bets
        }
        bj = result.blackjack
        dealer = tuple(card_of(c) for c in bj.dealer_cards)
        hands = {h.seat: h for h in bj.hands if h.hand == 1}
        for bet in settled.values():
            hand = (
                Hand(tuple(card_of(c) for c in hands[bet.spot.seat].cards))
                if bet.spot.seat in hands
                else None
            )
            if bet.spot.bet_type == bet_pb2.BET_TYPE_BLACKJACK_BET_BEHIND and hand is None:
                expected = bet.stake.amount_minor
            else:
                assert hand is not None
                expected = blackjack.settle_hand(hand, dealer, bet.stake.amount_minor).payout
            assert bet.payout.amount_minor == expected, bet
        alice_bets = [b for b in settled.values() if b.player_id == alice]
        assert len(alice_bets) == 2  # her seat bet and the double's extra bet
        for player in (alice, bob, carol, dave):
            mine = [b for b in settled.values() if b.player_id == player]
            change = sum(b.payout.amount_minor - b.stake.amount_minor for b in mine)
            assert await casino.balance(player) == funded[player] + change
        assert {b.bet.bet_id for b in recalled.bets} == set(settled)
        report = await casino.reconcile()
        assert all(c.ok for c in report.currencies), report
    finally:
        await events.close()


async def test_killing_the_game_while_it_waits_for_a_decision_refunds_every_stake(
    platform: Platform, casino: Casino
) -> None:
    alice, bob = [await casino.player(50_000) for _ in range(2)]
    table_id = await casino.table(
        table_config("blackjack kill", common_pb2.GAME_TYPE_BLACKJACK, 5, decision_s=20)
    )
    events = Events(casino.game, table_id)
    try:
        for _ in range(6):
            opened = await events.wait_for(
                lambda e: e.HasField("round_opened") and not events.of(e.round_id, "bets_closed")
            )
            round_id = opened.round_id
            before = [await casino.balance(p) for p in (alice, bob)]
            await casino.place(table_id, round_id, [(alice, seat(1)), (bob, seat(2))])
            asked = await events.wait_for(first_of(round_id), timeout=30)
            if not asked.HasField("decision_requested") or asked.decision_requested.seat != 1:
                await events.wait_for(payload("round_settled", round_id), timeout=60)
                continue
            if DOUBLE not in asked.decision_requested.allowed_actions:
                await events.wait_for(payload("round_settled", round_id), timeout=60)
                continue
            doubled = await casino.game.SubmitDecision(
                decision(table_id, round_id, alice, 1, 1, DOUBLE, key()), timeout=10
            )
            assert doubled.balance_after.amount_minor == before[0] - 2_000
            break
        else:
            pytest.fail("no round asked alice to decide in six rounds")

        game = platform.processes["game_svc"]
        game.process.send_signal(signal.SIGKILL)
        await game.process.wait()
        platform.processes["game_svc"] = await platform.spawn("game_svc")
        await platform.processes["game_svc"].wait_serving(30)

        voided = await events.wait_for(payload("round_voided", round_id), timeout=60)
        assert voided.round_voided.refunded_bet_count == 3  # two seats and the double
        assert [await casino.balance(p) for p in (alice, bob)] == before
        assert not events.of(round_id, "round_settled")
        report = await casino.reconcile()
        assert all(c.ok for c in report.currencies), report
    finally:
        await events.close()


async def test_infinite_mode_lets_every_player_decide_on_the_common_cards(casino: Casino) -> None:
    players = [await casino.player(50_000) for _ in range(3)]
    table_id = await casino.table(
        table_config("infinite", common_pb2.GAME_TYPE_BLACKJACK, 5, infinite=True, decision_s=3)
    )
    events = Events(casino.game, table_id)
    try:
        opened = await events.wait_for(payload("round_opened"))
        round_id = opened.round_id
        placed = await casino.place(table_id, round_id, [(p, seat(0)) for p in players])
        assert all(r.status == bet_pb2.BET_STATUS_ACCEPTED for r in placed), placed
        behind_refused = await casino.place(table_id, round_id, [(players[0], behind(1))])
        assert behind_refused[0].status == bet_pb2.BET_STATUS_REJECTED
        seats = [Seat(players[0], 0, [HIT]), Seat(players[1], 0, [STAND])]
        # One window for everyone: answer it for the first two players only.
        asked = await events.wait_for(
            lambda e: (
                e.round_id == round_id
                and e.WhichOneof("payload") in ("decision_requested", "round_settled")
            )
        )
        if asked.HasField("decision_requested"):
            assert asked.decision_requested.seat == 0
            assert not asked.decision_requested.player_id
            for me in seats:
                action = (
                    me.plan[0]
                    if INSURANCE not in asked.decision_requested.allowed_actions
                    else STAND
                )
                await casino.game.SubmitDecision(
                    decision(table_id, round_id, me.player, 0, 1, action), timeout=10
                )
        ended = await events.wait_for(payload("round_settled", round_id), timeout=60)
        made = [e.decision_made for e in events.of(round_id, "decision_made")]
        if asked.HasField("decision_requested"):
            by_player = {d.player_id: d for d in reversed(made)}
            assert not by_player[players[0]].automatic
            assert by_player[players[2]].automatic  # the silent player stood when time ran out
        hands = events.of(round_id, "round_result")[0].round_result.blackjack.hands
        assert {h.player_id for h in hands} == set(players)
        assert all(h.seat == 0 for h in hands)
        # Everyone shares the first two common cards.
        assert len({tuple((c.rank, c.suit) for c in h.cards[:2]) for h in hands}) == 1
        assert ended.round_settled.part == ended.round_settled.part_count == 1
        report = await casino.reconcile()
        assert all(c.ok for c in report.currencies), report
    finally:
        await events.close()
