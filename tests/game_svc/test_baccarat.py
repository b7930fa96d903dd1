"""Punto banco: every third-card branch, naturals, coup checks and payouts."""

from __future__ import annotations

import pytest

from game_svc import baccarat
from game_svc.baccarat import Coup, Side, Winner
from game_svc.bets import BetType, InvalidBet, Spot
from game_svc.cards import Card, Rank, Shoe, Suit, cards
from game_svc.money import Outcome


def of_value(value: int, suit: Suit = Suit.CLUBS) -> Card:
    return Card(Rank(value) if value else Rank.KING, suit)


def two_cards(total: int) -> tuple[Card, Card]:
    """Two cards (not a pair) with the given baccarat total."""
    first = 7 if total != 7 else 3
    return of_value(first, Suit.HEARTS), of_value((total - first) % 10, Suit.SPADES)


# The banker's table, rows banker totals 0-7, columns the player's third card 0-9.
# D draws, S stands.
BANKER_TABLE = {
    0: "DDDDDDDDDD",
    1: "DDDDDDDDDD",
    2: "DDDDDDDDDD",
    3: "DDDDDDDDSD",
    4: "SSDDDDDDSS",
    5: "SSSSDDDDSS",
    6: "SSSSSSDDSS",
    7: "SSSSSSSSSS",
}


@pytest.mark.parametrize("banker_total", range(8))
@pytest.mark.parametrize("third", range(10))
def test_banker_draw_table_cell(banker_total: int, third: int) -> None:
    """Every cell, checked through the dealing rule on real hands (player on 3 draws)."""
    expected = BANKER_TABLE[banker_total][third] == "D"
    assert baccarat.banker_draws(banker_total, of_value(third)) is expected
    player = two_cards(3) + (of_value(third, Suit.DIAMONDS),)
    banker = two_cards(banker_total)
    assert baccarat.next_card(player, banker) is (Side.BANKER if expected else None)
    if expected:
        with pytest.raises(ValueError):
            Coup(player, banker)
        assert len(Coup(player, banker + (of_value(5),)).banker) == 3
    else:
        assert Coup(player, banker).banker == banker


@pytest.mark.parametrize("player_total", range(10))
def test_player_draws_on_0_to_5(player_total: int) -> None:
    banker = two_cards(7 if player_total < 8 else 0)
    player = two_cards(player_total)
    expected = Side.PLAYER if player_total <= 5 else None
    assert baccarat.player_draws(player_total) is (player_total <= 5)
    if player_total <= 7:
        assert baccarat.next_card(player, banker) is expected
    else:  # a player natural ends the coup
        assert baccarat.next_card(player, banker) is None


@pytest.mark.parametrize("banker_total", range(8))
def test_banker_alone_draws_on_0_to_5_when_player_stands(banker_total: int) -> None:
    for player_total in (6, 7):
        expected = Side.BANKER if banker_total <= 5 else None
        assert baccarat.banker_draws(banker_total, None) is (banker_total <= 5)
        assert baccarat.next_card(two_cards(player_total), two_cards(banker_total)) is expected


@pytest.mark.parametrize(("player_total", "banker_total"), [(8, 0), (9, 3), (0, 8), (5, 9), (8, 9)])
def test_a_natural_ends_the_coup(player_total: int, banker_total: int) -> None:
    coup = Coup(two_cards(player_total), two_cards(banker_total))
    assert coup.natural
    assert len(coup.player) == len(coup.banker) == 2


def test_first_four_cards_alternate() -> None:
    p1, b1, p2, b2 = cards("2C 3D 4H 5S")
    assert baccarat.next_card([], []) is Side.PLAYER
    assert baccarat.next_card([p1], []) is Side.BANKER
    assert baccarat.next_card([p1], [b1]) is Side.PLAYER
    assert baccarat.next_card([p1, p2], [b1]) is Side.BANKER
    with pytest.raises(ValueError):
        baccarat.next_card([], [b1])
    with pytest.raises(ValueError):
        baccarat.next_card([p1, p2, b2], [b1])


def test_cards_the_rules_do_not_call_for_are_refused() -> None:
    with pytest.raises(ValueError):  # the player stands on 7
        baccarat.next_card(two_cards(7) + cards("2C"), two_cards(7))
    with pytest.raises(ValueError):  # natural: no third card
        baccarat.next_card(two_cards(9) + cards("2C"), two_cards(1))
    with pytest.raises(ValueError):  # banker drew before the player's third card
        baccarat.next_card(two_cards(2), two_cards(2) + cards("2C"))
    with pytest.raises(ValueError):  # banker on 7 stands
        baccarat.next_card(two_cards(6), two_cards(7) + cards("2C"))


def test_deal_follows_the_rules_and_reports_the_order() -> None:
    # Player 2+3 = 5 draws a 4 (9); banker 6+K = 6 stands on a 4.
    shoe = Shoe(cards("2C 6D 3H KS 4C 9D"))
    coup, order = baccarat.deal(shoe.deal)
    assert [side for side, _ in order] == [
        Side.PLAYER,
        Side.BANKER,
        Side.PLAYER,
        Side.BANKER,
        Side.PLAYER,
    ]
    assert (coup.player_total, coup.banker_total, coup.winner) == (9, 6, Winner.PLAYER)
    assert shoe.remaining == 1


def test_pairs_compare_ranks_not_values() -> None:
    with pytest.raises(ValueError):  # 0 and 0: both hands must draw
        Coup(cards("KC KD"), cards("TH JS"))
    full = Coup(cards("KC KD 7H"), cards("TH JS 2C"))
    assert full.player_pair and not full.banker_pair
    assert (full.player_total, full.banker_total) == (7, 2)


@pytest.mark.parametrize(
    ("player", "banker", "winner"),
    [
        ("9C KD", "8C KD", Winner.PLAYER),
        ("8C KD", "9C KD", Winner.BANKER),
        ("8C KD", "8H QD", Winner.TIE),
    ],
)
def test_winner(player: str, banker: str, winner: Winner) -> None:
    assert Coup(cards(player), cards(banker)).winner is winner


PLAYER_WINS = Coup(cards("9C KD"), cards("8C KD"))
BANKER_WINS = Coup(cards("8C KD"), cards("9C KD"))
TIE_WITH_PAIRS = Coup(cards("4C 4D"), cards("9H 9S"))  # 8 and 8, a natural tie


@pytest.mark.parametrize(
    ("bet_type", "coup", "stake", "outcome", "payout"),
    [
        (BetType.BACCARAT_PLAYER, PLAYER_WINS, 100, Outcome.WIN, 200),
        (BetType.BACCARAT_PLAYER, BANKER_WINS, 100, Outcome.LOSE, 0),
        (BetType.BACCARAT_PLAYER, TIE_WITH_PAIRS, 100, Outcome.PUSH, 100),
        (BetType.BACCARAT_BANKER, BANKER_WINS, 100, Outcome.WIN, 195),
        (BetType.BACCARAT_BANKER, BANKER_WINS, 15, Outcome.WIN, 29),  # 14.25 rounds down
        (BetType.BACCARAT_BANKER, BANKER_WINS, 1, Outcome.WIN, 1),  # 0.95 rounds down to 0
        (BetType.BACCARAT_BANKER, PLAYER_WINS, 100, Outcome.LOSE, 0),
        (BetType.BACCARAT_BANKER, TIE_WITH_PAIRS, 100, Outcome.PUSH, 100),
        (BetType.BACCARAT_TIE, TIE_WITH_PAIRS, 100, Outcome.WIN, 900),
        (BetType.BACCARAT_TIE, PLAYER_WINS, 100, Outcome.LOSE, 0),
        (BetType.BACCARAT_PLAYER_PAIR, TIE_WITH_PAIRS, 10, Outcome.WIN, 120),
        (BetType.BACCARAT_PLAYER_PAIR, PLAYER_WINS, 10, Outcome.LOSE, 0),
        (BetType.BACCARAT_BANKER_PAIR, TIE_WITH_PAIRS, 10, Outcome.WIN, 120),
        (BetType.BACCARAT_BANKER_PAIR, BANKER_WINS, 10, Outcome.LOSE, 0),
    ],
)
def test_payouts(bet_type: BetType, coup: Coup, stake: int, outcome: Outcome, payout: int) -> None:
    settlement = baccarat.settle(bet_type, stake, coup)
    assert (settlement.outcome, settlement.payout) == (outcome, payout)


def test_spots() -> None:
    baccarat.validate(Spot(BetType.BACCARAT_TIE))
    with pytest.raises(InvalidBet):
        baccarat.validate(Spot(BetType.BACCARAT_TIE, (1,)))
    with pytest.raises(InvalidBet):
        baccarat.validate(Spot(BetType.ROULETTE_RED))
    with pytest.raises(ValueError):
        baccarat.settle(BetType.ROULETTE_RED, 10, PLAYER_WINS)
