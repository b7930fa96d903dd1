"""Blackjack: hand values, decisions, splits, doubles, insurance, the dealer, settlement."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casino.common.v1 import bet_pb2
from game_svc import blackjack
from game_svc.bets import BetType, InvalidBet, Spot
from game_svc.blackjack import (
    Action,
    DecisionDeadlinePassed,
    DecisionNotExpected,
    DecisionRequest,
    Hand,
    Rules,
    SeatPlay,
)
from game_svc.cards import Shoe, ShoeEmpty, cards
from game_svc.money import Outcome

S17 = Rules()
H17 = Rules(dealer_hits_soft_17=True)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_action_numbers_equal_the_contract() -> None:
    assert {a.name: a.value for a in Action} == {
        n.removeprefix("BLACKJACK_ACTION_"): v
        for n, v in bet_pb2.BlackjackAction.items()
        if v != bet_pb2.BLACKJACK_ACTION_UNSPECIFIED
    }


@pytest.mark.parametrize(
    ("hand", "total", "soft"),
    [
        ("AC 6D", 17, True),
        ("AC 6D KH", 17, False),
        ("AC AD", 12, True),
        ("AC AD 9H", 21, True),
        ("AC AD AH AS", 14, True),
        ("AC 5D AH", 17, True),
        ("AC 5D AH KS", 17, False),
        ("KC QD", 20, False),
        ("KC QD 2H", 22, False),
        ("5C 6D", 11, False),
        ("AC KD", 21, True),
        ("9C 9D AH AS", 20, False),
    ],
)
def test_hand_values(hand: str, total: int, soft: bool) -> None:
    value = blackjack.value(cards(hand))
    assert (value.total, value.soft) == (total, soft)
    assert value.busted is (total > 21)


def test_blackjack_is_two_cards_of_an_unsplit_hand() -> None:
    assert Hand(cards("AC KD")).blackjack
    assert Hand(cards("JC AD")).blackjack
    assert not Hand(cards("AC KD"), split=True).blackjack
    assert not Hand(cards("7C 7D 7H")).blackjack


def shoe(text: str) -> Shoe:
    return Shoe(cards(text))


def test_two_cards_offer_hit_stand_double() -> None:
    play = SeatPlay.start(S17, cards("9C 7D"))
    assert play.allowed_actions() == {Action.HIT, Action.STAND, Action.DOUBLE}


def test_a_pair_can_be_split_and_ten_values_count_as_a_pair() -> None:
    assert Action.SPLIT in SeatPlay.start(S17, cards("8C 8D")).allowed_actions()
    assert Action.SPLIT in SeatPlay.start(S17, cards("KC JD")).allowed_actions()
    no_split = Rules(max_hands_per_seat=1)
    assert Action.SPLIT not in SeatPlay.start(no_split, cards("8C 8D")).allowed_actions()


def test_a_natural_needs_no_decision() -> None:
    play = SeatPlay.start(S17, cards("AC KD"))
    assert play.done and play.allowed_actions() == frozenset()
    with pytest.raises(DecisionNotExpected):
        play.apply(Action.STAND, shoe("").deal)


def test_hit_then_only_hit_or_stand() -> None:
    play = SeatPlay.start(S17, cards("2C 3D")).apply(Action.HIT, shoe("4H").deal)
    assert play.hand.cards == cards("2C 3D 4H")
    assert play.allowed_actions() == {Action.HIT, Action.STAND}
    with pytest.raises(DecisionNotExpected):
        play.apply(Action.DOUBLE, shoe("5S").deal)


def test_hitting_to_21_stands_and_busting_ends_the_hand() -> None:
    assert SeatPlay.start(S17, cards("9C 2D")).apply(Action.HIT, shoe("KH").deal).done
    busted = SeatPlay.start(S17, cards("KC 6D")).apply(Action.HIT, shoe("9H").deal)
    assert busted.done and busted.hands[0].busted


def test_stand() -> None:
    play = SeatPlay.start(S17, cards("KC 6D")).apply(Action.STAND, shoe("").deal)
    assert play.done and play.hands[0].stood and play.hands[0].cards == cards("KC 6D")


def test_double_takes_exactly_one_card_and_doubles_the_stake() -> None:
    play = SeatPlay.start(S17, cards("5C 6D")).apply(Action.DOUBLE, shoe("2H 9S").deal)
    hand = play.hands[0]
    assert play.done and hand.doubled and hand.cards == cards("5C 6D 2H")
    assert hand.stake(10) == 20
    won = blackjack.settle_hand(hand, cards("KC 8D"), 10)  # 13 loses to 18
    assert (won.outcome, won.payout) == (Outcome.LOSE, 0)
    won = blackjack.settle_hand(hand, cards("KC 6D 9H"), 10)
    assert (won.outcome, won.payout) == (Outcome.WIN, 40)


def test_split_plays_each_hand_in_turn_in_dealing_order() -> None:
    deck = shoe("3H KS 9C TD")
    play = SeatPlay.start(S17, cards("8C 8D")).apply(Action.SPLIT, deck.deal)
    assert [h.cards for h in play.hands] == [cards("8C 3H"), cards("8D")]
    assert play.active == 0 and deck.dealt == 1  # hand 2 waits for its card
    play = play.apply(Action.HIT, deck.deal)  # 8 3 K = 21 stands by itself
    assert play.active == 1 and play.hands[1].cards == cards("8D 9C")
    play = play.apply(Action.STAND, deck.deal)
    assert play.done and deck.dealt == 3
    assert [h.value.total for h in play.hands] == [21, 17]


def test_one_split_only_by_default_and_resplit_when_allowed() -> None:
    play = SeatPlay.start(S17, cards("8C 8D")).apply(Action.SPLIT, shoe("8H 2S").deal)
    assert play.hand.is_pair and Action.SPLIT not in play.allowed_actions()
    four = Rules(max_hands_per_seat=4)
    play = SeatPlay.start(four, cards("8C 8D")).apply(Action.SPLIT, shoe("8H 2S").deal)
    assert Action.SPLIT in play.allowed_actions()
    play = play.apply(Action.SPLIT, shoe("2C 3C").deal)
    assert [h.cards for h in play.hands] == [cards("8C 2C"), cards("8H"), cards("8D")]


def test_double_after_split_follows_the_rule() -> None:
    das = SeatPlay.start(S17, cards("8C 8D")).apply(Action.SPLIT, shoe("3H").deal)
    assert Action.DOUBLE in das.allowed_actions()
    no_das = Rules(double_after_split=False)
    play = SeatPlay.start(no_das, cards("8C 8D")).apply(Action.SPLIT, shoe("3H").deal)
    assert play.allowed_actions() == {Action.HIT, Action.STAND}


def test_split_aces_take_one_card_each_and_21_is_not_blackjack() -> None:
    play = SeatPlay.start(S17, cards("AC AD")).apply(Action.SPLIT, shoe("KH 5S").deal)
    assert play.done
    assert [h.cards for h in play.hands] == [cards("AC KH"), cards("AD 5S")]
    assert not play.hands[0].blackjack
    settled = blackjack.settle_hand(play.hands[0], cards("KC 9D"), 10)
    assert (settled.outcome, settled.payout) == (Outcome.WIN, 20)  # 1:1, not 3:2


def test_failed_decision_changes_nothing() -> None:
    play = SeatPlay.start(S17, cards("8C 8D"))
    with pytest.raises(ShoeEmpty):
        play.apply(Action.SPLIT, shoe("").deal)
    assert play.hands == (Hand(cards("8C 8D")),) and play.active == 0


@pytest.mark.parametrize(
    ("dealer", "s17_hits", "h17_hits"),
    [
        ("AC 6D", False, True),  # soft 17
        ("AC 2D 4H", False, True),  # soft 17 on three cards
        ("KC 7D", False, False),  # hard 17
        ("AC 6D KH", False, False),  # hard 17 after the ace falls back to 1
        ("KC 6D", True, True),
        ("AC 7D", False, False),  # soft 18
        ("2C 3D", True, True),
    ],
)
def test_dealer_rule_s17_and_h17(dealer: str, s17_hits: bool, h17_hits: bool) -> None:
    assert blackjack.dealer_must_hit(cards(dealer), S17) is s17_hits
    assert blackjack.dealer_must_hit(cards(dealer), H17) is h17_hits


def test_play_dealer_draws_until_the_rule_stands() -> None:
    assert blackjack.play_dealer(cards("AC 6D"), shoe("4H").deal, S17) == cards("AC 6D")
    assert blackjack.play_dealer(cards("AC 6D"), shoe("4H").deal, H17) == cards("AC 6D 4H")
    assert blackjack.play_dealer(cards("2C 3D"), shoe("4H 5S 9C").deal, S17) == cards(
        "2C 3D 4H 5S 9C"
    )


def test_dealer_plays_only_when_a_hand_needs_comparing() -> None:
    busted = SeatPlay.start(S17, cards("KC 6D")).apply(Action.HIT, shoe("9H").deal)
    natural = SeatPlay.start(S17, cards("AC KD"))
    standing = SeatPlay.start(S17, cards("KC 6D")).apply(Action.STAND, shoe("").deal)
    assert not blackjack.dealer_plays([busted, natural])
    assert blackjack.dealer_plays([busted, standing])


@pytest.mark.parametrize(
    ("player", "dealer", "stake", "outcome", "payout"),
    [
        ("AC KD", "KC 9D", 10, Outcome.WIN, 25),  # blackjack 3:2
        ("AC KD", "KC 9D", 5, Outcome.WIN, 12),  # 7.5 rounds down
        ("AC KD", "AH QD", 10, Outcome.PUSH, 10),  # blackjack against blackjack
        ("AC KD", "7C 7D 7H", 10, Outcome.WIN, 25),  # blackjack beats a three-card 21
        ("7C 7D 7H", "AH QD", 10, Outcome.LOSE, 0),  # dealer blackjack beats 21
        ("KC 9D", "AH QD", 10, Outcome.LOSE, 0),
        ("KC 6D 9H", "KH 6S 8C", 10, Outcome.LOSE, 0),  # a busted player loses first
        ("KC 8D", "KH 6S 8C", 10, Outcome.WIN, 20),  # dealer busts
        ("KC 8D", "9H 9S", 10, Outcome.PUSH, 10),
        ("KC 9D", "9H 9S", 10, Outcome.WIN, 20),
        ("KC 7D", "9H 9S", 10, Outcome.LOSE, 0),
        ("AC 7D", "KH 8S", 10, Outcome.PUSH, 10),  # soft 18 against 18
    ],
)
def test_settle_hand(player: str, dealer: str, stake: int, outcome: Outcome, payout: int) -> None:
    settled = blackjack.settle_hand(Hand(cards(player)), cards(dealer), stake)
    assert (settled.outcome, settled.payout) == (outcome, payout)


def test_insurance_costs_half_and_pays_2_to_1() -> None:
    assert blackjack.insurance_offered(cards("AC")[0])
    assert not blackjack.insurance_offered(cards("KC")[0])
    assert blackjack.insurance_stake(10) == 5
    assert blackjack.insurance_stake(15) == 7
    won = blackjack.settle_insurance(5, cards("AC KD"))
    assert (won.outcome, won.payout) == (Outcome.WIN, 15)
    lost = blackjack.settle_insurance(5, cards("AC 9D"))
    assert (lost.outcome, lost.payout) == (Outcome.LOSE, 0)


def test_dealer_peeks_under_aces_and_tens_only() -> None:
    assert [blackjack.dealer_peeks(c) for c in cards("AC KD TH 9S 5C")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_bet_behind_follows_hand_one_without_the_double() -> None:
    play = SeatPlay.start(S17, cards("5C 6D")).apply(Action.DOUBLE, shoe("9H").deal)
    settled = blackjack.settle_bet_behind(play, cards("KC 8D"), 10)
    assert (settled.outcome, settled.payout) == (Outcome.WIN, 20)  # not 40
    split = SeatPlay.start(S17, cards("8C 8D")).apply(Action.SPLIT, shoe("KH").deal)
    split = split.apply(Action.STAND, shoe("2S").deal).apply(Action.STAND, shoe("").deal)
    settled = blackjack.settle_bet_behind(split, cards("KC 7D"), 10)  # hand 1 is 18
    assert (settled.outcome, settled.payout) == (Outcome.WIN, 20)


def test_infinite_mode_players_share_cards_but_decide_alone() -> None:
    infinite = Rules(infinite_mode=True, seat_count=0)
    common = list(cards("9C 3D 5H KS 2C"))
    alice = SeatPlay.start(infinite, common[:2])
    bob = SeatPlay.start(infinite, common[:2])
    alice = alice.apply(Action.STAND, blackjack.common_draw(common, alice))
    bob = bob.apply(Action.HIT, blackjack.common_draw(common, bob))
    bob = bob.apply(Action.HIT, blackjack.common_draw(common, bob))
    assert alice.hands[0].cards == cards("9C 3D")
    assert bob.hands[0].cards == cards("9C 3D 5H KS")
    carol = SeatPlay.start(infinite, common[:2]).apply(
        Action.DOUBLE, blackjack.common_draw(common, SeatPlay.start(infinite, common[:2]))
    )
    assert carol.hands[0].cards == cards("9C 3D 5H")  # the first common card, like Bob's
    dave = SeatPlay.start(infinite, cards("8C 8D"))
    with pytest.raises(ShoeEmpty):
        dave.apply(Action.SPLIT, blackjack.common_draw(cards("8C 8D"), dave))


def test_seat_spots() -> None:
    blackjack.validate(Spot(BetType.BLACKJACK_SEAT, seat=7), S17)
    blackjack.validate(Spot(BetType.BLACKJACK_BET_BEHIND, seat=1), S17)
    infinite = Rules(infinite_mode=True, seat_count=0)
    blackjack.validate(Spot(BetType.BLACKJACK_SEAT), infinite)
    bad = [
        (Spot(BetType.BLACKJACK_SEAT, seat=0), S17, "seat"),
        (Spot(BetType.BLACKJACK_SEAT, seat=8), S17, "seat"),
        (Spot(BetType.BLACKJACK_SEAT, seat=4), Rules(seat_count=3), "seat"),
        (Spot(BetType.BLACKJACK_SEAT, seat=1), infinite, "seat"),
        (Spot(BetType.BLACKJACK_BET_BEHIND, seat=0), S17, "seat"),
        (Spot(BetType.BLACKJACK_BET_BEHIND, seat=1), infinite, "bet_type"),
        (Spot(BetType.BLACKJACK_INSURANCE, seat=1), S17, "bet_type"),
        (Spot(BetType.BLACKJACK_SEAT, (1,), seat=1), S17, "numbers"),
        (Spot(BetType.ROULETTE_RED), S17, "bet_type"),
    ]
    for spot, rules, field in bad:
        with pytest.raises(InvalidBet) as raised:
            blackjack.validate(spot, rules)
        assert raised.value.field == field, spot


@pytest.mark.parametrize(
    "overrides",
    [
        {"decks": 0},
        {"decks": 9},
        {"max_hands_per_seat": 5},
        {"decision_window_s": 2},
        {"decision_window_s": 61},
        {"seat_count": 8},
        {"seat_count": 0},
        {"infinite_mode": True},  # infinite mode has no seats
    ],
)
def test_rules_out_of_range(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(S17, **overrides)


def test_initial_deal_order() -> None:
    assert blackjack.initial_deal_order([3, 1]) == (
        ("seat", 1),
        ("seat", 3),
        ("dealer", 0),
        ("seat", 1),
        ("seat", 3),
        ("dealer", 0),
    )


def test_decision_before_the_deadline_is_applied() -> None:
    request = DecisionRequest.open(2, 1, frozenset({Action.HIT, Action.STAND}), NOW, S17)
    assert request.deadline == NOW + timedelta(seconds=15)
    decision = request.decide(Action.HIT, NOW + timedelta(seconds=14.9))
    assert (decision.action, decision.automatic) == (Action.HIT, False)
    with pytest.raises(DecisionNotExpected):
        request.decide(Action.SPLIT, NOW)


def test_no_decision_by_the_deadline_means_stand() -> None:
    request = DecisionRequest.open(2, 1, frozenset({Action.HIT, Action.STAND}), NOW, S17)
    assert request.expire(NOW + timedelta(seconds=14)) is None
    decision = request.expire(request.deadline)
    assert decision is not None
    assert (decision.action, decision.automatic) == (Action.STAND, True)
    with pytest.raises(DecisionDeadlinePassed) as raised:
        request.decide(Action.HIT, request.deadline)
    assert raised.value.reason == "DECISION_DEADLINE_PASSED"


def test_stand_must_be_allowed_in_every_request() -> None:
    with pytest.raises(ValueError):
        DecisionRequest.open(1, 1, frozenset({Action.HIT}), NOW, S17)
