"""Domain results become the contract's messages field by field."""

from __future__ import annotations

import pytest

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from game_svc import results
from game_svc.baccarat import Coup
from game_svc.blackjack import Action, Rules
from game_svc.blackjack_round import BlackjackRound
from game_svc.cards import Card, Shoe, cards


def test_cards_round_trip_and_face_down_cards_are_refused() -> None:
    for index in range(52):
        card = Card.from_index(index, decks=1)
        assert results.card_of(results.card_message(card)) == card
    assert results.card_message(Card.parse("QH")) == common_pb2.Card(
        rank=common_pb2.CARD_RANK_QUEEN, suit=common_pb2.CARD_SUIT_HEARTS
    )
    with pytest.raises(ValueError):
        results.card_of(common_pb2.Card())


def test_roulette() -> None:
    assert results.roulette_result(0).pocket == 0
    with pytest.raises(ValueError):
        results.roulette_result(37)


def test_baccarat() -> None:
    message = results.baccarat_result(Coup(cards("4C 4D"), cards("9H 9S")))
    assert (message.player_total, message.banker_total) == (8, 8)
    assert message.winner == table_event_pb2.BACCARAT_WINNER_TIE
    assert message.player_pair and message.banker_pair and message.natural
    assert [results.card_of(c) for c in message.banker_cards] == list(cards("9H 9S"))


def test_blackjack_seats() -> None:
    deck = Shoe(cards("8C 6D 8H TS 3C 9D TH 9S"))
    round_ = BlackjackRound(Rules(), {2: 10}, deck.deal)
    for action in (Action.SPLIT, Action.DOUBLE, Action.STAND):
        round_.decide(2, action, deck.deal)
    message = results.blackjack_result(round_, {2: "alice"})
    assert [results.card_of(c) for c in message.dealer_cards] == list(cards("6D TS 9S"))
    assert (message.dealer_total, message.dealer_busted, message.dealer_blackjack) == (
        25,
        True,
        False,
    )
    assert [(h.seat, h.hand, h.player_id, h.total, h.doubled) for h in message.hands] == [
        (2, 1, "alice", 20, True),
        (2, 2, "alice", 18, False),
    ]
    assert {h.outcome for h in message.hands} == {bet_pb2.BET_OUTCOME_WIN}


def test_blackjack_infinite_mode_names_players_at_seat_0() -> None:
    round_ = BlackjackRound(
        Rules(infinite_mode=True, seat_count=0), {"bob": 10}, Shoe(cards("AC 9D KH 7S")).deal
    )
    hand = results.blackjack_result(round_, {}).hands[0]
    assert (hand.seat, hand.hand, hand.player_id, hand.blackjack, hand.soft) == (
        0,
        1,
        "bob",
        True,
        True,
    )
