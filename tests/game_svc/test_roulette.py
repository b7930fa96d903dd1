"""European roulette: every position type, valid and invalid, and every payout."""

from __future__ import annotations

from fractions import Fraction

import pytest

from casino.common.v1 import bet_pb2
from game_svc import roulette
from game_svc.bets import BetType, InvalidBet, Spot
from game_svc.money import Outcome

INSIDE_TYPES = [
    BetType.ROULETTE_STRAIGHT,
    BetType.ROULETTE_SPLIT,
    BetType.ROULETTE_STREET,
    BetType.ROULETTE_CORNER,
    BetType.ROULETTE_SIX_LINE,
]
EVEN_MONEY = [
    BetType.ROULETTE_RED,
    BetType.ROULETTE_BLACK,
    BetType.ROULETTE_ODD,
    BetType.ROULETTE_EVEN,
    BetType.ROULETTE_LOW,
    BetType.ROULETTE_HIGH,
]


def every_spot() -> list[Spot]:
    spots = [Spot(t, numbers) for t in INSIDE_TYPES for numbers in roulette.INSIDE[t]]
    spots += [
        Spot(t, group=g)
        for t in (BetType.ROULETTE_COLUMN, BetType.ROULETTE_DOZEN)
        for g in (1, 2, 3)
    ]
    return spots + [Spot(t) for t in EVEN_MONEY]


def test_bet_type_numbers_equal_the_contract() -> None:
    assert {t.name: t.value for t in BetType} == {
        n.removeprefix("BET_TYPE_"): v
        for n, v in bet_pb2.BetType.items()
        if v != bet_pb2.BET_TYPE_UNSPECIFIED
    }


def test_position_counts_of_the_single_zero_layout() -> None:
    counts = {t: len(roulette.INSIDE[t]) for t in INSIDE_TYPES}
    assert counts == {
        BetType.ROULETTE_STRAIGHT: 37,
        BetType.ROULETTE_SPLIT: 60,  # 24 across, 33 down, 0-1 0-2 0-3
        BetType.ROULETTE_STREET: 14,  # 12 rows, 0-1-2, 0-2-3
        BetType.ROULETTE_CORNER: 23,  # 22 blocks, 0-1-2-3
        BetType.ROULETTE_SIX_LINE: 11,
    }
    assert len(roulette.RED) == len(roulette.BLACK) == 18
    assert {1, 3, 5, 7, 9, 12, 19, 36} <= roulette.RED
    assert {2, 4, 10, 11, 20, 28, 29, 35} <= roulette.BLACK


@pytest.mark.parametrize(
    ("bet_type", "numbers"),
    [
        (BetType.ROULETTE_STRAIGHT, (0,)),
        (BetType.ROULETTE_STRAIGHT, (36,)),
        (BetType.ROULETTE_SPLIT, (0, 1)),
        (BetType.ROULETTE_SPLIT, (0, 2)),
        (BetType.ROULETTE_SPLIT, (0, 3)),
        (BetType.ROULETTE_SPLIT, (1, 2)),
        (BetType.ROULETTE_SPLIT, (2, 3)),
        (BetType.ROULETTE_SPLIT, (1, 4)),
        (BetType.ROULETTE_SPLIT, (33, 36)),
        (BetType.ROULETTE_STREET, (0, 1, 2)),
        (BetType.ROULETTE_STREET, (0, 2, 3)),
        (BetType.ROULETTE_STREET, (1, 2, 3)),
        (BetType.ROULETTE_STREET, (34, 35, 36)),
        (BetType.ROULETTE_CORNER, (0, 1, 2, 3)),
        (BetType.ROULETTE_CORNER, (1, 2, 4, 5)),
        (BetType.ROULETTE_CORNER, (2, 3, 5, 6)),
        (BetType.ROULETTE_CORNER, (32, 33, 35, 36)),
        (BetType.ROULETTE_SIX_LINE, (1, 2, 3, 4, 5, 6)),
        (BetType.ROULETTE_SIX_LINE, (31, 32, 33, 34, 35, 36)),
    ],
)
def test_valid_inside_positions(bet_type: BetType, numbers: tuple[int, ...]) -> None:
    bet = roulette.validate(Spot(bet_type, numbers))
    assert bet.covers == frozenset(numbers)


@pytest.mark.parametrize(
    ("bet_type", "numbers"),
    [
        (BetType.ROULETTE_STRAIGHT, (37,)),
        (BetType.ROULETTE_STRAIGHT, ()),
        (BetType.ROULETTE_STRAIGHT, (1, 2)),
        (BetType.ROULETTE_SPLIT, (3, 4)),  # end of one row, start of the next
        (BetType.ROULETTE_SPLIT, (1, 5)),  # diagonal
        (BetType.ROULETTE_SPLIT, (0, 4)),
        (BetType.ROULETTE_SPLIT, (1, 7)),
        (BetType.ROULETTE_SPLIT, (2, 1)),  # not ascending
        (BetType.ROULETTE_SPLIT, (5, 5)),
        (BetType.ROULETTE_SPLIT, (36, 39)),
        (BetType.ROULETTE_SPLIT, (1,)),
        (BetType.ROULETTE_STREET, (2, 3, 4)),
        (BetType.ROULETTE_STREET, (0, 1, 3)),
        (BetType.ROULETTE_STREET, (1, 4, 7)),  # a column piece, not a row
        (BetType.ROULETTE_STREET, (35, 36, 37)),
        (BetType.ROULETTE_CORNER, (3, 4, 6, 7)),  # wraps around the layout edge
        (BetType.ROULETTE_CORNER, (1, 2, 3, 4)),
        (BetType.ROULETTE_CORNER, (0, 1, 2, 4)),
        (BetType.ROULETTE_CORNER, (1, 2, 5, 4)),
        (BetType.ROULETTE_CORNER, (34, 35, 37, 38)),
        (BetType.ROULETTE_SIX_LINE, (2, 3, 4, 5, 6, 7)),
        (BetType.ROULETTE_SIX_LINE, (0, 1, 2, 3, 4, 5)),
        (BetType.ROULETTE_SIX_LINE, (1, 2, 3, 7, 8, 9)),  # rows not adjacent
        (BetType.ROULETTE_SIX_LINE, (34, 35, 36, 37, 38, 39)),
    ],
)
def test_invalid_inside_positions(bet_type: BetType, numbers: tuple[int, ...]) -> None:
    with pytest.raises(InvalidBet) as raised:
        roulette.validate(Spot(bet_type, numbers))
    assert raised.value.reason == "INVALID_BET"
    assert raised.value.field == "numbers"


@pytest.mark.parametrize(
    ("spot", "field"),
    [
        (Spot(BetType.ROULETTE_COLUMN, group=0), "group"),
        (Spot(BetType.ROULETTE_COLUMN, group=4), "group"),
        (Spot(BetType.ROULETTE_DOZEN, group=0), "group"),
        (Spot(BetType.ROULETTE_DOZEN, group=4), "group"),
        (Spot(BetType.ROULETTE_DOZEN, (1,), group=1), "numbers"),
        (Spot(BetType.ROULETTE_RED, (1,)), "numbers"),
        (Spot(BetType.ROULETTE_RED, group=1), "group"),
        (Spot(BetType.ROULETTE_HIGH, seat=1), "seat"),
        (Spot(BetType.ROULETTE_STRAIGHT, (1,), group=1), "group"),
        (Spot(BetType.ROULETTE_STRAIGHT, (1,), seat=2), "seat"),
        (Spot(BetType.BACCARAT_PLAYER), "bet_type"),
        (Spot(BetType.BLACKJACK_SEAT, seat=1), "bet_type"),
    ],
)
def test_invalid_outside_and_foreign_spots(spot: Spot, field: str) -> None:
    with pytest.raises(InvalidBet) as raised:
        roulette.validate(spot)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("spot", "covers"),
    [
        (Spot(BetType.ROULETTE_COLUMN, group=1), set(range(1, 35, 3))),
        (Spot(BetType.ROULETTE_COLUMN, group=3), set(range(3, 37, 3))),
        (Spot(BetType.ROULETTE_DOZEN, group=1), set(range(1, 13))),
        (Spot(BetType.ROULETTE_DOZEN, group=2), set(range(13, 25))),
        (Spot(BetType.ROULETTE_DOZEN, group=3), set(range(25, 37))),
        (Spot(BetType.ROULETTE_ODD), {n for n in range(1, 37) if n % 2}),
        (Spot(BetType.ROULETTE_EVEN), {n for n in range(1, 37) if n % 2 == 0}),
        (Spot(BetType.ROULETTE_LOW), set(range(1, 19))),
        (Spot(BetType.ROULETTE_HIGH), set(range(19, 37))),
    ],
)
def test_outside_bets_cover_their_pockets(spot: Spot, covers: set[int]) -> None:
    assert roulette.validate(spot).covers == covers
    assert 0 not in roulette.validate(spot).covers


PAYOUT_ON_10 = {
    BetType.ROULETTE_STRAIGHT: 360,
    BetType.ROULETTE_SPLIT: 180,
    BetType.ROULETTE_STREET: 120,
    BetType.ROULETTE_CORNER: 90,
    BetType.ROULETTE_SIX_LINE: 60,
    BetType.ROULETTE_COLUMN: 30,
    BetType.ROULETTE_DOZEN: 30,
} | {t: 20 for t in EVEN_MONEY}


def test_every_spot_wins_exactly_on_its_pockets_with_its_payout() -> None:
    for spot in every_spot():
        bet = roulette.validate(spot)
        for pocket in roulette.POCKETS:
            result = bet.settle(10, pocket)
            if pocket in bet.covers:
                assert result.outcome is Outcome.WIN, (spot, pocket)
                assert result.payout == PAYOUT_ON_10[spot.bet_type], (spot, pocket)
            else:
                assert result.outcome is Outcome.LOSE, (spot, pocket)
                assert result.payout == 0


def test_every_spot_returns_exactly_36_of_37() -> None:
    """Exact RTP by enumeration: one unit on each pocket's spin, for every possible bet."""
    for spot in every_spot():
        returned = sum(roulette.settle(spot, 1, pocket).payout for pocket in roulette.POCKETS)
        assert Fraction(returned, 37) == Fraction(36, 37), spot


def test_even_money_bets_lose_on_zero() -> None:
    for bet_type in EVEN_MONEY:
        assert roulette.settle(Spot(bet_type), 100, 0).outcome is Outcome.LOSE


def test_a_pocket_outside_the_wheel_is_refused() -> None:
    with pytest.raises(ValueError):
        roulette.settle(Spot(BetType.ROULETTE_RED), 10, 37)
