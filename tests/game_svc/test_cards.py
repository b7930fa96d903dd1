"""Cards match the contract's enums and the RNG's card-index mapping."""

from __future__ import annotations

import pytest

from casino.common.v1 import common_pb2
from game_svc.cards import Card, Rank, Shoe, ShoeEmpty, Suit, cards


def test_rank_and_suit_numbers_equal_the_contract() -> None:
    assert {r.name: r.value for r in Rank} == {
        n.removeprefix("CARD_RANK_"): v
        for n, v in common_pb2.CardRank.items()
        if v != common_pb2.CARD_RANK_UNSPECIFIED
    }
    assert {s.name: s.value for s in Suit} == {
        n.removeprefix("CARD_SUIT_"): v
        for n, v in common_pb2.CardSuit.items()
        if v != common_pb2.CARD_SUIT_UNSPECIFIED
    }


@pytest.mark.parametrize(
    ("index", "text"),
    [
        (0, "AC"),
        (12, "KC"),
        (13, "AD"),
        (25, "KD"),
        (38, "KH"),
        (39, "AS"),
        (51, "KS"),
        (52, "AC"),
        (415, "KS"),
        (100, "10S"),
    ],
)
def test_card_index_mapping_follows_the_rng_contract(index: int, text: str) -> None:
    card = Card.from_index(index, decks=8)
    assert card == Card.parse(text)
    assert card.suit == (index % 52) // 13 + 1
    assert card.rank == index % 13 + 1


def test_every_deck_holds_each_card_once() -> None:
    shoe = [Card.from_index(i, decks=2) for i in range(104)]
    assert len(set(shoe)) == 52
    assert all(shoe.count(card) == 2 for card in set(shoe))


@pytest.mark.parametrize("index", [-1, 52])
def test_an_index_outside_the_shoe_is_refused(index: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        Card.from_index(index, decks=1)


def test_values_per_game() -> None:
    assert [c.baccarat_value for c in cards("AC 5D 9H TS JC QD KH")] == [1, 5, 9, 0, 0, 0, 0]
    assert [c.blackjack_value for c in cards("AC 5D 9H TS JC QD KH")] == [1, 5, 9, 10, 10, 10, 10]


def test_parse_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        Card.parse("1X")
    assert str(Card.parse("TD")) == "TD"


def test_shoe_deals_in_order_and_runs_out() -> None:
    shoe = Shoe.from_indexes([51, 0], decks=1)
    assert shoe.deal() == Card.parse("KS")
    assert shoe.deal() == Card.parse("AC")
    assert (shoe.dealt, shoe.remaining) == (2, 0)
    with pytest.raises(ShoeEmpty):
        shoe.deal()
