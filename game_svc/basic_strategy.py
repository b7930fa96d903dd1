"""Basic strategy for multi-deck S17 blackjack with double after split: the reference player.

The RTP benchmark and the tests play it to check the rules against the published return of
about 99.5% for 8 decks, S17, DAS, one split, peek, no surrender. It never takes insurance.
Doubles it may not take (three cards, or after a split without DAS) fall back to HIT, or
to STAND for soft 18 ("Ds").
"""

from __future__ import annotations

from game_svc.blackjack import Action, SeatPlay
from game_svc.cards import Card

H, S, D, DS, P = "H", "S", "D", "Ds", "P"

# Dealer upcard columns: 2 3 4 5 6 7 8 9 T A
HARD: dict[int, tuple[str, ...]] = {
    8: (H, H, H, H, H, H, H, H, H, H),
    9: (H, D, D, D, D, H, H, H, H, H),
    10: (D, D, D, D, D, D, D, D, H, H),
    11: (D, D, D, D, D, D, D, D, D, H),
    12: (H, H, S, S, S, H, H, H, H, H),
    13: (S, S, S, S, S, H, H, H, H, H),
    14: (S, S, S, S, S, H, H, H, H, H),
    15: (S, S, S, S, S, H, H, H, H, H),
    16: (S, S, S, S, S, H, H, H, H, H),
}
SOFT: dict[int, tuple[str, ...]] = {
    13: (H, H, H, D, D, H, H, H, H, H),
    14: (H, H, H, D, D, H, H, H, H, H),
    15: (H, H, D, D, D, H, H, H, H, H),
    16: (H, H, D, D, D, H, H, H, H, H),
    17: (H, D, D, D, D, H, H, H, H, H),
    18: (S, DS, DS, DS, DS, S, S, H, H, H),
}
# Pairs by card value (1 is aces); "" means play the hand as a total.
PAIRS: dict[int, tuple[str, ...]] = {
    1: (P, P, P, P, P, P, P, P, P, P),
    2: (P, P, P, P, P, P, H, H, H, H),
    3: (P, P, P, P, P, P, H, H, H, H),
    4: (H, H, H, P, P, H, H, H, H, H),
    6: (P, P, P, P, P, H, H, H, H, H),
    7: (P, P, P, P, P, P, H, H, H, H),
    8: (P, P, P, P, P, P, P, P, P, P),
    9: (P, P, P, P, P, S, P, P, S, S),
}


def _column(upcard: Card) -> int:
    up = upcard.blackjack_value
    return 9 if up == 1 else up - 2


def decide(play: SeatPlay, upcard: Card) -> Action:
    """The basic-strategy action for the active hand of ``play`` against ``upcard``."""
    allowed = play.allowed_actions()
    hand = play.hand
    column = _column(upcard)
    if Action.SPLIT in allowed:
        row = PAIRS.get(hand.cards[0].blackjack_value)
        if row is not None and row[column] == P:
            return Action.SPLIT
    total, soft = hand.value.total, hand.value.soft
    if soft:
        move = S if total >= 19 else SOFT[max(total, 13)][column]
    else:
        move = S if total >= 17 else HARD[max(total, 8)][column]
    if move in (D, DS):
        if Action.DOUBLE in allowed:
            return Action.DOUBLE
        return Action.STAND if move == DS else Action.HIT
    return Action.STAND if move == S else Action.HIT
