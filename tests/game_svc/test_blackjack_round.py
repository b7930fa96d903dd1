"""A blackjack round at a table: deal order, turns, insurance, peek, infinite mode, bet behind."""

from __future__ import annotations

import pytest

from game_svc.blackjack import Action, DecisionNotExpected, Rules
from game_svc.blackjack_round import BlackjackRound, Stage
from game_svc.cards import Shoe, cards
from game_svc.money import Outcome

SEATS = Rules(seat_count=7)
INFINITE = Rules(infinite_mode=True, seat_count=0)


def shoe(text: str) -> Shoe:
    return Shoe(cards(text))


def stage(round_: BlackjackRound) -> Stage:
    """The round's stage now. Read through a call because mypy keeps an earlier ``is`` check
    of the property narrowed across the decisions that move it."""
    return round_.stage


def test_deal_order_and_turns_in_seat_order() -> None:
    deck = shoe("9C 5D 7H 8S TC TD 6H 9H")  # seat 1, seat 3, up, seat 1, seat 3, hole; then hits
    round_ = BlackjackRound(SEATS, {3: 10, 1: 10}, deck.deal)
    assert round_.plays[1].hands[0].cards == cards("9C 8S")
    assert round_.plays[3].hands[0].cards == cards("5D TC")
    assert round_.dealer == cards("7H TD")
    assert round_.stage is Stage.PLAYING
    assert round_.awaiting() == (1,)
    with pytest.raises(DecisionNotExpected):
        round_.decide(3, Action.HIT, deck.deal)  # not seat 3's turn yet
    round_.decide(1, Action.STAND, deck.deal)
    assert round_.awaiting() == (3,)
    round_.decide(3, Action.HIT, deck.deal)  # 15 + 6 = 21 stands by itself
    assert stage(round_) is Stage.FINISHED and round_.dealer == cards("7H TD")  # 17 stands
    assert round_.result(1).hands[0].settlement.outcome is Outcome.PUSH  # 17 against 17
    assert round_.result(3).hands[0].settlement.payout == 20


def test_insurance_then_the_peek_ends_the_round() -> None:
    deck = shoe("TC AD AH 9S KH KD")  # seat 1 T 9, seat 2 A K (blackjack), up A, hole K
    round_ = BlackjackRound(SEATS, {1: 10, 2: 10}, deck.deal)
    assert round_.stage is Stage.INSURANCE and set(round_.awaiting()) == {1, 2}
    assert round_.allowed(1) == {Action.INSURANCE, Action.STAND}
    round_.decide(1, Action.INSURANCE, deck.deal)
    with pytest.raises(DecisionNotExpected):
        round_.result(1)
    round_.decide(2, Action.STAND, deck.deal)  # declines
    assert stage(round_) is Stage.FINISHED  # dealer blackjack: no decisions at all
    seat_1 = round_.result(1)
    assert seat_1.hands[0].settlement.outcome is Outcome.LOSE
    assert seat_1.insurance is not None and seat_1.insurance.payout == 15
    seat_2 = round_.result(2)
    assert seat_2.hands[0].settlement.outcome is Outcome.PUSH and seat_2.insurance is None


def test_no_dealer_blackjack_after_insurance_means_play_on() -> None:
    deck = shoe("TC AH 6D 7S 5C")  # seat 1 T 6, up A, hole 7 (soft 18)
    round_ = BlackjackRound(SEATS, {1: 1}, deck.deal)
    assert round_.allowed(1) == {Action.STAND}  # a stake of 1 cannot be half-insured
    round_.decide(1, Action.STAND, deck.deal)
    assert round_.stage is Stage.PLAYING
    round_.decide(1, Action.HIT, deck.deal)  # 21
    assert stage(round_) is Stage.FINISHED
    assert round_.result(1).hands[0].settlement.outcome is Outcome.WIN


def test_a_ten_upcard_peeks_without_insurance() -> None:
    round_ = BlackjackRound(SEATS, {4: 10}, shoe("9C KD 9H AS").deal)
    assert round_.stage is Stage.FINISHED and round_.awaiting() == ()
    assert round_.result(4).hands[0].settlement.outcome is Outcome.LOSE


def test_all_naturals_end_the_round_without_the_dealer_drawing() -> None:
    deck = shoe("AC 6D KH 9S 5C")
    round_ = BlackjackRound(SEATS, {1: 10}, deck.deal)
    assert round_.stage is Stage.FINISHED and deck.dealt == 4
    assert round_.result(1).hands[0].settlement.payout == 25


def test_splits_and_doubles_are_settled_per_hand() -> None:
    # 8 8 against 6 (hole T): split; 8+3 doubles to 20; 8+T stands; the dealer's 16 busts.
    deck = shoe("8C 6D 8H TS 3C 9D TH 9S")
    round_ = BlackjackRound(SEATS, {2: 10}, deck.deal)
    round_.decide(2, Action.SPLIT, deck.deal)
    round_.decide(2, Action.DOUBLE, deck.deal)
    round_.decide(2, Action.STAND, deck.deal)
    assert round_.stage is Stage.FINISHED
    hands = round_.result(2).hands
    assert [(h.hand, h.stake, h.settlement.payout) for h in hands] == [(1, 20, 40), (2, 10, 20)]


def test_bet_behind_follows_its_seat_and_an_empty_seat_pushes() -> None:
    deck = shoe("5C 7D 6H KS 9C")  # seat 5: 5 6 = 11 doubles with 9 -> 20; dealer 7 K = 17
    round_ = BlackjackRound(SEATS, {5: 10}, deck.deal)
    round_.decide(5, Action.DOUBLE, deck.deal)
    assert round_.bet_behind(5, 30).payout == 60  # not doubled
    assert round_.bet_behind(6, 30).outcome is Outcome.PUSH


def test_infinite_mode_shares_cards_and_deals_common_cards_on_demand() -> None:
    deck = shoe("9C 7D 3H TS 5C KS 2D 8H")  # common 9 3, up 7, hole T; then 5, K, ...
    round_ = BlackjackRound(INFINITE, {"alice": 10, "bob": 10, "carol": 10}, deck.deal)
    assert set(round_.awaiting()) == {"alice", "bob", "carol"}  # everyone decides at once
    round_.decide("bob", Action.HIT, deck.deal)  # deals common card 3: 5 -> 17
    round_.decide("alice", Action.HIT, deck.deal)  # the same common card, no new deal
    assert deck.dealt == 5
    round_.decide("alice", Action.HIT, deck.deal)  # common card 4: K -> 27, busts
    assert round_.plays["bob"].hands[0].cards == cards("9C 3H 5C")
    assert round_.plays["alice"].hands[0].cards == cards("9C 3H 5C KS")
    round_.decide("bob", Action.STAND, deck.deal)
    assert round_.awaiting() == ("carol",)
    round_.decide("carol", Action.STAND, deck.deal)
    assert round_.dealer == cards("7D TS")  # 17 stands
    assert [round_.result(k).hands[0].settlement.outcome for k in ("alice", "bob", "carol")] == [
        Outcome.LOSE,
        Outcome.PUSH,
        Outcome.LOSE,
    ]


def test_seats_must_exist() -> None:
    with pytest.raises(ValueError):
        BlackjackRound(Rules(seat_count=3), {4: 10}, shoe("2C 3C 4C 5C").deal)


def test_a_round_without_seats_deals_the_dealer_alone() -> None:
    round_ = BlackjackRound(SEATS, {}, shoe("AC 5C 4C 5D").deal)
    assert round_.stage is Stage.FINISHED
    assert round_.dealer == cards("AC 5C")
    assert round_.bet_behind(3, 10).outcome is Outcome.PUSH
