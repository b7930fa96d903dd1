"""The round hash follows the contract's definition exactly."""

from __future__ import annotations

import hashlib

import pytest

from casino.common.v1 import table_event_pb2
from game_svc.cards import Card
from game_svc.round_hash import DealtCard, Target, preimage, round_hash


def test_target_numbers_equal_the_contract() -> None:
    assert {t.name: t.value for t in Target} == {
        n.removeprefix("CARD_TARGET_"): v
        for n, v in table_event_pb2.CardTarget.items()
        if v != table_event_pb2.CARD_TARGET_UNSPECIFIED
    }


def test_the_contract_example() -> None:
    assert preimage("R-77", pocket=17) == "R-77|W17"
    assert round_hash("R-77", pocket=17) == hashlib.sha256(b"R-77|W17").hexdigest()


def test_cards_in_deal_index_order() -> None:
    dealt = [
        DealtCard(2, Target.BANKER, Card.parse("KD")),
        DealtCard(1, Target.PLAYER, Card.parse("AS")),
        DealtCard(3, Target.SEAT, Card.parse("9H"), seat=2, hand=1),
    ]
    assert preimage("r-1", dealt) == "r-1|C1.0.0.1.4|C2.0.0.13.2|C4.2.1.9.3"
    assert round_hash("r-1", dealt) != round_hash("r-1", dealt[:2])


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        preimage("", pocket=1)
    card = DealtCard(1, Target.PLAYER, Card.parse("AS"))
    with pytest.raises(ValueError):
        preimage("r", [card, card])
