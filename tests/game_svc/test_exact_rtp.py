"""Exact baccarat returns by enumerating every coup of a full 8-deck shoe.

Cards are drawn without replacement; each coup is weighted by the number of ordered card
sequences that deal it, all brought to sequences of six cards so the weights share one
denominator. The rules under test decide every draw (``baccarat.next_card``), so a wrong
cell in the banker's table moves these figures.
"""

from __future__ import annotations

from fractions import Fraction

from game_svc import baccarat
from game_svc.baccarat import Side, Winner
from game_svc.bets import BetType
from game_svc.cards import Card, Rank, Suit

DECKS = 8
SHOE = 52 * DECKS
REPRESENTATIVE = [Card(Rank(v) if v else Rank.KING, Suit.CLUBS) for v in range(10)]


def coup_weights(decks: int = DECKS) -> dict[Winner, int]:
    """Ordered six-card sequences of the shoe leading to each winner."""
    counts = [16 * decks] + [4 * decks] * 9  # value 0 (ten to king), then 1 to 9
    shoe = 52 * decks
    weights = dict.fromkeys(Winner, 0)

    def walk(player: list[Card], banker: list[Card], left: int, weight: int) -> None:
        side = baccarat.next_card(player, banker)
        if side is None:
            dealt = len(player) + len(banker)
            for extra in range(6 - dealt):  # the cards nobody drew: any of those left
                weight *= left - extra
            p, b = baccarat.total(player), baccarat.total(banker)
            weights[Winner.PLAYER if p > b else Winner.BANKER if b > p else Winner.TIE] += weight
            return
        hand = player if side is Side.PLAYER else banker
        for v in range(10):
            if counts[v]:
                times = counts[v]
                counts[v] -= 1
                hand.append(REPRESENTATIVE[v])
                walk(player, banker, left - 1, weight * times)
                hand.pop()
                counts[v] += 1

    walk([], [], shoe, 1)
    return weights


def test_exact_baccarat_returns_match_the_published_figures() -> None:
    weights = coup_weights()
    total = sum(weights.values())
    assert total == SHOE * (SHOE - 1) * (SHOE - 2) * (SHOE - 3) * (SHOE - 4) * (SHOE - 5)
    p_player, p_banker, p_tie = (Fraction(weights[w], total) for w in Winner)
    player_rtp = 2 * p_player + p_tie
    banker_rtp = Fraction(39, 20) * p_banker + p_tie
    tie_rtp = 9 * p_tie
    # Published 8-deck figures: house edges 1.2351% (Player), 1.0579% (Banker),
    # 14.3596% (Tie at 8:1).
    assert abs(float(player_rtp) - 0.987649) < 1e-6
    assert abs(float(banker_rtp) - 0.989421) < 1e-6
    assert abs(float(tie_rtp) - 0.856404) < 1e-6


def test_exact_pair_return() -> None:
    """A pair bet wins when the second card matches the first's rank: 31 of 415 cards."""
    p_pair = Fraction(4 * DECKS - 1, SHOE - 1)
    pays = baccarat.ODDS[BetType.BACCARAT_PLAYER_PAIR]
    assert pays.numerator == 11
    assert abs(float(p_pair * (1 + pays.numerator)) - 0.896386) < 1e-6
