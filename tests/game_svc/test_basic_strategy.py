"""The reference player's decisions and the benchmark's round flow on rigged shoes."""

from __future__ import annotations

import pytest

from bench.rtp import Tally, play_blackjack_round
from game_svc import basic_strategy
from game_svc.blackjack import Action, Rules, SeatPlay
from game_svc.cards import Shoe, cards

RULES = Rules()


@pytest.mark.parametrize(
    ("hand", "up", "action"),
    [
        ("TC 6D", "TH", Action.HIT),
        ("TC 6D", "6H", Action.STAND),
        ("TC 2D", "3H", Action.HIT),
        ("TC 2D", "4H", Action.STAND),
        ("6C 5D", "6H", Action.DOUBLE),
        ("6C 5D", "AH", Action.HIT),
        ("6C 4D", "9H", Action.DOUBLE),
        ("6C 4D", "TH", Action.HIT),
        ("5C 4D", "2H", Action.HIT),
        ("5C 4D", "3H", Action.DOUBLE),
        ("AC 7D", "2H", Action.STAND),
        ("AC 7D", "4H", Action.DOUBLE),
        ("AC 7D", "9H", Action.HIT),
        ("AC 6D", "3H", Action.DOUBLE),
        ("AC 2D", "4H", Action.HIT),
        ("AC 2D", "5H", Action.DOUBLE),
        ("AC 8D", "6H", Action.STAND),
        ("AC AD", "TH", Action.SPLIT),
        ("8C 8D", "AH", Action.SPLIT),
        ("9C 9D", "7H", Action.STAND),
        ("9C 9D", "8H", Action.SPLIT),
        ("TC KD", "6H", Action.STAND),
        ("5C 5D", "9H", Action.DOUBLE),
        ("4C 4D", "5H", Action.SPLIT),
        ("4C 4D", "4H", Action.HIT),
        ("2C 2D", "7H", Action.SPLIT),
        ("TC 7D", "AH", Action.STAND),
    ],
)
def test_basic_strategy(hand: str, up: str, action: Action) -> None:
    play = SeatPlay.start(RULES, cards(hand))
    assert basic_strategy.decide(play, cards(up)[0]) is action


def test_soft_18_stands_when_it_cannot_double() -> None:
    play = SeatPlay.start(RULES, cards("AC 2D")).apply(Action.HIT, Shoe(cards("5H")).deal)
    assert play.hand.value.total == 18 and play.hand.value.soft
    assert basic_strategy.decide(play, cards("4H")[0]) is Action.STAND
    hard_11 = SeatPlay.start(RULES, cards("2C 3D")).apply(Action.HIT, Shoe(cards("6H")).deal)
    assert basic_strategy.decide(hard_11, cards("6H")[0]) is Action.HIT


@pytest.mark.parametrize(
    ("shoe", "ratio"),
    [
        ("AC AH KD KS", 1.0),  # both blackjack: push (deal order: seat, up, seat, hole)
        ("TC AH 9D KS", 0.0),  # the dealer peeks a blackjack: the 19 loses before deciding
        ("AC 9H KD 8S", 2.5),  # player blackjack pays 3:2
        ("6C 6H 5D TS 9C 9D", 3.0),  # 11 doubles to 20; the dealer's 16 draws 9 and busts
        ("TC 6H 6D TS 5C", 0.0),  # 16 stands against a 6; the dealer 16 draws 5: 21
    ],
)
def test_benchmark_round_flow(shoe: str, ratio: float) -> None:
    assert play_blackjack_round(RULES, Shoe(cards(shoe)).deal) == ratio


def test_benchmark_round_with_a_split() -> None:
    # Seat 8 8 against a 7 (hole T): split; hand 1 gets 3 (11, doubles vs 7) and 9 -> 20;
    # hand 2 gets T -> 18, stands; dealer 17 stands. Net: +2 (doubled) + 1 = +3 units.
    shoe = Shoe(cards("8C 7H 8D TS 3C 9D TH"))
    assert play_blackjack_round(RULES, shoe.deal) == 4.0
    assert shoe.remaining == 0


def test_tally_interval() -> None:
    tally = Tally(4, 4.0, 6.0)  # returns 0, 1, 1, 2 (mean 1, variance 2/3)
    assert tally.mean == 1.0
    assert tally.half_width_99 == pytest.approx(2.5758 * (2 / 3 / 4) ** 0.5)
