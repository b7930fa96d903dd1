"""Playing cards and shoes, matching the contract's ``Card`` and the RNG's card indexes.

A shoe of ``d`` decks holds card indexes ``0 .. 52d-1``; index ``c`` is deck ``c // 52``,
suit ``(c % 52) // 13 + 1`` (a ``CardSuit`` number) and rank ``c % 13 + 1`` (a ``CardRank``
number), exactly as ``FAIRNESS_ALGORITHM_HMAC_SHA256_V1`` documents, so a shuffled list
of indexes from rng_svc turns into the dealt cards without any other convention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

CARDS_PER_DECK = 52
MAX_DECKS = 8


class Rank(IntEnum):
    """Values equal ``casino.common.v1.CardRank``: ACE is 1, TEN is 10, KING is 13."""

    ACE = 1
    TWO = 2
    THREE = 3
    FOUR = 4
    FIVE = 5
    SIX = 6
    SEVEN = 7
    EIGHT = 8
    NINE = 9
    TEN = 10
    JACK = 11
    QUEEN = 12
    KING = 13


class Suit(IntEnum):
    """Values equal ``casino.common.v1.CardSuit``."""

    CLUBS = 1
    DIAMONDS = 2
    HEARTS = 3
    SPADES = 4


@dataclass(frozen=True, slots=True)
class Card:
    """One face-up card. Face-down cards are not ``Card``s: they are unknown until revealed."""

    rank: Rank
    suit: Suit

    @classmethod
    def from_index(cls, index: int, decks: int = MAX_DECKS) -> Card:
        """The card with RNG index ``index`` in a shoe of ``decks`` decks."""
        if not 0 <= index < CARDS_PER_DECK * decks:
            raise ValueError(f"card index {index} is outside a {decks}-deck shoe")
        return _BY_INDEX[index % CARDS_PER_DECK]

    @classmethod
    def parse(cls, text: str) -> Card:
        """``"AS"``, ``"10H"``, ``"TD"``, ``"KC"``: handy in tests and logs."""
        rank_text, suit_text = text[:-1].upper(), text[-1].upper()
        rank = _RANK_SYMBOLS.get(rank_text)
        suit = _SUIT_SYMBOLS.get(suit_text)
        if rank is None or suit is None:
            raise ValueError(f"not a card: {text!r}")
        return _BY_INDEX[(suit - 1) * 13 + rank - 1]

    @property
    def baccarat_value(self) -> int:
        """Aces 1, two to nine their pips, tens and faces 0."""
        return int(self.rank) if self.rank < Rank.TEN else 0

    @property
    def blackjack_value(self) -> int:
        """Aces 1 (an ace is promoted to 11 by the hand, not the card), tens and faces 10."""
        return min(int(self.rank), 10)

    def __str__(self) -> str:
        rank = {Rank.ACE: "A", Rank.TEN: "T", Rank.JACK: "J", Rank.QUEEN: "Q", Rank.KING: "K"}
        return f"{rank.get(self.rank, str(int(self.rank)))}{'CDHS'[self.suit - 1]}"


_BY_INDEX = tuple(Card(Rank(c % 13 + 1), Suit(c // 13 + 1)) for c in range(CARDS_PER_DECK))
_RANK_SYMBOLS = {"A": Rank.ACE, "T": Rank.TEN, "J": Rank.JACK, "Q": Rank.QUEEN, "K": Rank.KING}
_RANK_SYMBOLS |= {str(n): Rank(n) for n in range(2, 11)}
_SUIT_SYMBOLS = {"C": Suit.CLUBS, "D": Suit.DIAMONDS, "H": Suit.HEARTS, "S": Suit.SPADES}


def cards(text: str) -> tuple[Card, ...]:
    """``cards("AS KD")``: several cards from their short names."""
    return tuple(Card.parse(part) for part in text.split())


class ShoeEmpty(Exception):
    """The shoe ran out: a round needs more cards than the shuffle produced."""


class Shoe:
    """Cards in dealing order, dealt one at a time; the deal position is the only state."""

    def __init__(self, dealt_order: Sequence[Card]) -> None:
        self._cards = tuple(dealt_order)
        self._next = 0

    @classmethod
    def from_indexes(cls, indexes: Iterable[int], decks: int) -> Shoe:
        """A shoe from the RNG's shuffled card indexes (first dealt first)."""
        return cls([Card.from_index(i, decks) for i in indexes])

    def deal(self) -> Card:
        if self._next >= len(self._cards):
            raise ShoeEmpty(f"all {len(self._cards)} cards were dealt")
        card = self._cards[self._next]
        self._next += 1
        return card

    @property
    def dealt(self) -> int:
        return self._next

    @property
    def remaining(self) -> int:
        return len(self._cards) - self._next
