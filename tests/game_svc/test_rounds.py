"""The round state machine: every transition, the betting window and bet idempotency."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from casino.common.v1 import common_pb2
from game_svc import blackjack, roulette
from game_svc.bets import BetLimit, BetType, InvalidBet, Spot, TableLimits
from game_svc.rounds import BetIdReused, BetRequest, IllegalTransition, Phase, Round

OPENED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CLOSES = OPENED + timedelta(seconds=15)
LIMITS = TableLimits(
    {
        BetType.ROULETTE_STRAIGHT: BetLimit(10, 500),
        BetType.ROULETTE_RED: BetLimit(100, 10_000),
    },
    max_round_stake=12_000,
)
RED = Spot(BetType.ROULETTE_RED)
SEVEN = Spot(BetType.ROULETTE_STRAIGHT, (7,))

LEGAL = {
    (Phase.OPEN, Phase.BETS_CLOSED),
    (Phase.OPEN, Phase.VOIDED),
    (Phase.BETS_CLOSED, Phase.RESULT),
    (Phase.BETS_CLOSED, Phase.VOIDED),
    (Phase.RESULT, Phase.SETTLED),
    (Phase.RESULT, Phase.VOIDED),
}
PATH_TO = {
    Phase.OPEN: [],
    Phase.BETS_CLOSED: [Phase.BETS_CLOSED],
    Phase.RESULT: [Phase.BETS_CLOSED, Phase.RESULT],
    Phase.SETTLED: [Phase.BETS_CLOSED, Phase.RESULT, Phase.SETTLED],
    Phase.VOIDED: [Phase.VOIDED],
}


def new_round() -> Round:
    return Round("r-1", "t-1", OPENED, CLOSES, LIMITS, roulette.validate)


def move(round_: Round, phase: Phase, now: datetime = CLOSES) -> None:
    actions: dict[Phase, Callable[[datetime], None]] = {
        Phase.BETS_CLOSED: round_.close_bets,
        Phase.RESULT: round_.record_result,
        Phase.SETTLED: round_.settle,
        Phase.VOIDED: round_.void,
    }
    actions[phase](now)


def test_phase_numbers_equal_the_contract() -> None:
    assert {p.name: p.value for p in Phase} == {
        n.removeprefix("ROUND_PHASE_"): v
        for n, v in common_pb2.RoundPhase.items()
        if v != common_pb2.ROUND_PHASE_UNSPECIFIED
    }


@pytest.mark.parametrize(("old", "new"), list(product(Phase, [p for p in Phase if p.value > 1])))
def test_every_transition(old: Phase, new: Phase, caplog: pytest.LogCaptureFixture) -> None:
    round_ = new_round()
    for step in PATH_TO[old]:
        move(round_, step)
    assert round_.phase is old
    caplog.set_level(logging.INFO, logger="game_svc.rounds")
    caplog.clear()
    if (old, new) in LEGAL:
        move(round_, new, CLOSES + timedelta(seconds=1))
        assert round_.phase is new
        assert round_.phase_times[new] == CLOSES + timedelta(seconds=1)
        assert f"{old.name} -> {new.name}" in caplog.text
    else:
        with pytest.raises(IllegalTransition) as raised:
            move(round_, new)
        assert round_.phase is old
        assert (raised.value.old, raised.value.new) == (old, new)
        assert raised.value.reason == {
            Phase.SETTLED: "ROUND_ALREADY_SETTLED",
            Phase.VOIDED: "ROUND_ALREADY_REFUNDED",
        }.get(old, "ILLEGAL_TRANSITION")
        assert caplog.text == ""


def test_a_round_starts_open_and_its_window_closes_after_it_opens() -> None:
    assert new_round().phase is Phase.OPEN
    with pytest.raises(ValueError):
        Round("r", "t", OPENED, OPENED, LIMITS, roulette.validate)


def bet(bet_id: str = "b-1", spot: Spot = RED, stake: int = 100, player: str = "p-1") -> BetRequest:
    return BetRequest(bet_id, player, spot, stake)


def test_bets_are_accepted_only_before_the_close_time() -> None:
    round_ = new_round()
    assert round_.place(bet("early"), OPENED).accepted
    assert round_.place(bet("last"), CLOSES - timedelta(microseconds=1)).accepted
    late = round_.place(bet("late"), CLOSES)
    assert (late.accepted, late.reason) == (False, "BETTING_CLOSED")
    assert round_.phase is Phase.OPEN  # the clock alone refuses bets, even before close_bets
    assert [b.bet_id for b in round_.accepted] == ["early", "last"]


def test_no_bet_after_no_more_bets() -> None:
    round_ = new_round()
    round_.close_bets(OPENED + timedelta(seconds=3))  # the studio closed early
    answer = round_.place(bet(), OPENED + timedelta(seconds=4))
    assert (answer.accepted, answer.reason) == (False, "BETTING_CLOSED")
    assert round_.accepted == ()


@pytest.mark.parametrize("final", [Phase.SETTLED, Phase.VOIDED])
def test_no_bet_on_a_finished_round(final: Phase) -> None:
    round_ = new_round()
    for step in PATH_TO[final]:
        move(round_, step)
    assert round_.place(bet(), OPENED).reason == "BETTING_CLOSED"


def test_close_if_due_follows_the_server_clock() -> None:
    round_ = new_round()
    assert not round_.close_if_due(CLOSES - timedelta(microseconds=1))
    assert round_.close_if_due(CLOSES)
    assert round_.phase is Phase.BETS_CLOSED
    assert not round_.close_if_due(CLOSES + timedelta(seconds=1))


def test_same_bet_id_and_payload_gets_the_first_answer() -> None:
    round_ = new_round()
    first = round_.place(bet(), OPENED)
    again = round_.place(bet(), CLOSES + timedelta(seconds=5))  # even after the close
    assert again == first and again.accepted
    assert round_.total_stake == 100 and len(round_.accepted) == 1


def test_a_rejection_is_repeated_too() -> None:
    round_ = new_round()
    first = round_.place(bet(stake=5), OPENED)
    assert first.reason == "BET_BELOW_TABLE_MIN"
    assert round_.place(bet(stake=5), OPENED + timedelta(seconds=1)) == first


@pytest.mark.parametrize(
    "changed",
    [bet(stake=200), bet(spot=SEVEN), bet(player="p-2")],
)
def test_same_bet_id_with_another_payload_is_an_error(changed: BetRequest) -> None:
    round_ = new_round()
    round_.place(bet(), OPENED)
    with pytest.raises(BetIdReused) as raised:
        round_.place(changed, OPENED)
    assert raised.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert round_.total_stake == 100


def test_limits_per_type_per_spot_and_per_round() -> None:
    round_ = new_round()
    assert round_.place(bet("a", SEVEN, 9), OPENED).reason == "BET_BELOW_TABLE_MIN"
    assert round_.place(bet("b", SEVEN, 400), OPENED).accepted
    assert round_.place(bet("c", SEVEN, 101), OPENED).reason == "BET_ABOVE_TABLE_MAX"
    assert round_.place(bet("d", SEVEN, 100), OPENED).accepted  # 500 on the spot: the max
    other = Spot(BetType.ROULETTE_STRAIGHT, (8,))
    assert round_.place(bet("e", other, 500), OPENED).accepted  # another spot, own max
    assert round_.place(bet("f", RED, 10_000), OPENED).accepted
    assert round_.place(bet("g", RED, 1001), OPENED).reason == "BET_ABOVE_TABLE_MAX"
    # p-1 has 11_000 in the round (cap 12_000); p-2 has a round total of its own.
    assert round_.place(bet("h", other, 500, player="p-2"), OPENED).accepted
    assert round_.place(bet("h2", RED, 1000), OPENED).reason == "BET_ABOVE_TABLE_MAX"
    capped = TableLimits(LIMITS.per_type, max_round_stake=1000)
    small = Round("r-2", "t-1", OPENED, CLOSES, capped, roulette.validate)
    assert small.place(bet("i", RED, 600), OPENED).accepted
    assert small.place(bet("j", SEVEN, 401), OPENED).reason == "BET_ABOVE_TABLE_MAX"
    assert small.place(bet("k", SEVEN, 400), OPENED).accepted


def test_a_type_the_table_does_not_offer_is_rejected() -> None:
    round_ = new_round()
    answer = round_.place(bet(spot=Spot(BetType.ROULETTE_BLACK)), OPENED)
    assert (answer.accepted, answer.reason) == (False, "INVALID_BET")
    insurance = round_.place(bet("ins", Spot(BetType.BLACKJACK_INSURANCE, seat=1)), OPENED)
    assert insurance.reason == "INVALID_BET"


def test_a_blackjack_seat_takes_one_player_and_bet_behind_any_number() -> None:
    limits = TableLimits(
        {
            BetType.BLACKJACK_SEAT: BetLimit(100, 1000),
            BetType.BLACKJACK_BET_BEHIND: BetLimit(100, 1000),
        }
    )
    rules = blackjack.Rules(seat_count=3)
    round_ = Round(
        "r-3",
        "t-2",
        OPENED,
        CLOSES,
        limits,
        lambda spot: blackjack.validate(spot, rules),
        blackjack.admit_seat_bet,
    )
    seat_2 = Spot(BetType.BLACKJACK_SEAT, seat=2)
    assert round_.place(bet("a", seat_2, player="alice"), OPENED).accepted
    assert round_.place(bet("b", seat_2, player="alice"), OPENED).accepted  # her own seat
    taken = round_.place(bet("c", seat_2, player="bob"), OPENED)
    assert (taken.accepted, taken.reason) == (False, "SEAT_TAKEN")
    assert round_.place(bet("d", Spot(BetType.BLACKJACK_SEAT, seat=3), player="bob"), OPENED)
    behind = Spot(BetType.BLACKJACK_BET_BEHIND, seat=2)
    for n in range(5):
        assert round_.place(bet(f"e{n}", behind, player=f"p{n}"), OPENED).accepted
    with pytest.raises(InvalidBet):
        round_.place(bet("f", Spot(BetType.BLACKJACK_SEAT, seat=4)), OPENED)


def test_a_malformed_spot_fails_and_is_not_recorded() -> None:
    round_ = new_round()
    with pytest.raises(InvalidBet):
        round_.place(bet(spot=Spot(BetType.ROULETTE_STRAIGHT, (37,))), OPENED)
    with pytest.raises(InvalidBet):
        round_.place(bet(stake=0), OPENED)
    assert round_.answers == ()
    assert round_.place(bet(), OPENED).accepted  # the id is still free
