"""A blackjack deal at a table: cards named as published, extra bets on their hands, settlement."""

from __future__ import annotations

import pytest

from game_svc.bets import BetType, Spot
from game_svc.blackjack import Action, DecisionNotExpected, Rules
from game_svc.blackjack_deal import Deal, Dealt, Revealed, Taken, hole_index, next_place, replay
from game_svc.cards import Card, Shoe, cards
from game_svc.money import Outcome, Settlement
from game_svc.round_hash import DealtCard, Target
from game_svc.rounds import BetRequest


def seat_bet(bet_id: str, player: str, seat: int, stake: int = 10) -> BetRequest:
    return BetRequest(bet_id, player, Spot(BetType.BLACKJACK_SEAT, seat=seat), stake)


def behind(bet_id: str, player: str, seat: int, stake: int = 5) -> BetRequest:
    return BetRequest(bet_id, player, Spot(BetType.BLACKJACK_BET_BEHIND, seat=seat), stake)


def published(steps: list[Dealt | Revealed]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for step in steps:
        if isinstance(step, Revealed):
            out.append(("revealed", step.deal_index, str(step.card)))
        else:
            d = step.card
            card = "??" if step.face_down else str(d.card)
            out.append((d.deal_index, d.target.name, d.seat, d.hand, card))
    return out


def test_split_double_and_bets_behind_settle_on_their_hands() -> None:
    shoe = Shoe(cards("8C 5D 9H 8D KS 7C 3H 9S 2C QD 6S"))
    bets = [
        seat_bet("b1", "alice", 1),
        seat_bet("b2", "bob", 2),
        behind("c1", "carol", 1),
        behind("c3", "carol", 3),
    ]
    deal = Deal(Rules(), bets, shoe.deal)
    assert published(deal.steps) == [
        (1, "SEAT", 1, 1, "8C"),
        (2, "SEAT", 2, 1, "5D"),
        (3, "DEALER", 0, 0, "9H"),
        (4, "SEAT", 1, 1, "8D"),
        (5, "SEAT", 2, 1, "KS"),
        (6, "DEALER", 0, 0, "??"),
    ]
    assert deal.round.awaiting() == (1,)
    with pytest.raises(DecisionNotExpected):
        deal.owner("bob", 1, 1)  # not bob's seat
    with pytest.raises(DecisionNotExpected):
        deal.owner("bob", 2, 1)  # bob's seat, not his turn
    key = deal.owner("alice", 1, 1)
    assert deal.extra_stake(key, Action.SPLIT) == 10
    split = seat_bet("e1", "alice", 1)
    assert published(deal.decide(key, Action.SPLIT, split)) == [(7, "SEAT", 1, 1, "3H")]
    with pytest.raises(DecisionNotExpected):
        deal.owner("alice", 1, 2)  # hand 1 decides first
    double = seat_bet("e2", "alice", 1)
    assert published(deal.decide(key, Action.DOUBLE, double)) == [
        (8, "SEAT", 1, 1, "9S"),
        (9, "SEAT", 1, 2, "2C"),  # the split hand gets its second card when it comes up
    ]
    assert deal.owner("alice", 1, 2) == 1
    assert published(deal.decide(1, Action.HIT)) == [(10, "SEAT", 1, 2, "QD")]
    assert deal.decide(1, Action.STAND) == []
    assert not deal.finished
    assert published(deal.decide(2, Action.STAND)) == [
        ("revealed", 6, "7C"),
        (11, "DEALER", 0, 0, "6S"),
    ]
    assert deal.finished
    win20 = Settlement(Outcome.WIN, 20)
    assert deal.settlements() == {
        "b1": win20,  # hand 1, doubled: its two bets each win as the undoubled hand
        "e2": win20,
        "e1": win20,  # hand 2, made by the split
        "b2": win20,
        "c1": Settlement(Outcome.WIN, 10),  # behind seat 1's hand 1, without the double
        "c3": Settlement(Outcome.PUSH, 5),  # behind an empty seat
    }
    assert {bet.bet_id for bet in deal.bets} == {"b1", "b2", "e1", "e2", "c1", "c3"}
    assert [d.deal_index for d in deal.dealt] == list(range(1, 12))
    assert deal.dealt[5].card == Card.parse("7C")  # the hole card's value, for the round hash


def test_insurance_pays_when_the_dealer_peeks_a_blackjack() -> None:
    deal = Deal(Rules(), [seat_bet("b1", "alice", 1)], Shoe(cards("KC AS QD TH")).deal)
    assert deal.round.awaiting() == (1,)
    assert deal.extra_stake(1, Action.INSURANCE) == 5
    insurance = BetRequest("i1", "alice", deal.extra_spot(1, Action.INSURANCE), 5)
    assert insurance.spot.bet_type is BetType.BLACKJACK_INSURANCE
    assert published(deal.decide(1, Action.INSURANCE, insurance)) == [("revealed", 4, "TH")]
    assert deal.finished
    assert deal.settlements() == {
        "b1": Settlement(Outcome.LOSE, 0),
        "i1": Settlement(Outcome.WIN, 15),
    }


def test_infinite_mode_deals_common_cards_to_seat_zero() -> None:
    rules = Rules(infinite_mode=True, seat_count=0)
    bets = [seat_bet("a", "alice", 0), seat_bet("b", "bob", 0)]
    deal = Deal(rules, bets, Shoe(cards("5C 9D 6H 7S 8C 6D")).deal)
    assert published(deal.steps) == [
        (1, "SEAT", 0, 1, "5C"),
        (2, "DEALER", 0, 0, "9D"),
        (3, "SEAT", 0, 1, "6H"),
        (4, "DEALER", 0, 0, "??"),
    ]
    assert set(deal.round.awaiting()) == {"alice", "bob"}
    assert published(deal.decide(deal.owner("alice", 0, 1), Action.HIT)) == [
        (5, "SEAT", 0, 1, "8C")
    ]
    deal.decide("alice", Action.STAND)
    # bob takes the same third common card: nothing new is dealt
    assert deal.decide("bob", Action.DOUBLE, seat_bet("b2", "bob", 0)) == [
        Revealed(4, Card.parse("7S")),
        Dealt(DealtCard(6, Target.DEALER, Card.parse("6D"))),
    ]
    assert deal.settlements() == {
        "a": Settlement(Outcome.WIN, 20),
        "b": Settlement(Outcome.WIN, 20),
        "b2": Settlement(Outcome.WIN, 20),
    }


def test_an_extra_bet_goes_with_exactly_the_actions_that_stake() -> None:
    deal = Deal(Rules(), [seat_bet("b1", "alice", 1)], Shoe(cards("8C 9H 8D 7C 3H 4S")).deal)
    with pytest.raises(ValueError):
        deal.decide(1, Action.DOUBLE)
    with pytest.raises(ValueError):
        deal.decide(1, Action.HIT, seat_bet("x", "alice", 1))
    assert deal.extra_stake(1, Action.HIT) == 0


def test_a_studio_deal_is_replayed_from_its_cards_and_names_where_the_next_goes() -> None:
    rules = Rules()
    bets = [seat_bet("b1", "alice", 1), seat_bet("b2", "bob", 2)]
    shoe = cards("8C 5D 9H 8D KS 7C 3H 9S 2C QD 6S")
    seat1 = (Target.SEAT, 1, 1)
    assert hole_index(rules, bets) == 6
    expected = [seat1, (Target.SEAT, 2, 1), (Target.DEALER, 0, 0), seat1, (Target.SEAT, 2, 1)]
    for n, place in enumerate(expected):
        assert next_place(rules, bets, shoe[:n], []) == place
        assert replay(rules, bets, shoe[:n], []).deal is None
    first = replay(rules, bets, shoe[:6], [])
    assert first.deal is not None and not first.waiting
    assert next_place(rules, bets, shoe[:6], []) is None  # seat 1 must decide first

    taken = [Taken(1, Action.SPLIT, seat_bet("e1", "alice", 1))]
    assert replay(rules, bets, shoe[:6], taken).waiting
    assert next_place(rules, bets, shoe[:6], taken) == seat1
    assert not replay(rules, bets, shoe[:7], taken).waiting
    taken.append(Taken(1, Action.DOUBLE, seat_bet("e2", "alice", 1)))
    assert next_place(rules, bets, shoe[:7], taken) == seat1
    assert next_place(rules, bets, shoe[:8], taken) == (Target.SEAT, 1, 2)  # hand 2's card
    taken += [Taken(1, Action.HIT), Taken(1, Action.STAND), Taken(2, Action.STAND)]
    assert next_place(rules, bets, shoe[:9], taken) == (Target.SEAT, 1, 2)
    dealer_due = replay(rules, bets, shoe[:10], taken)
    assert dealer_due.waiting and dealer_due.deal is not None
    assert not dealer_due.deal.round.awaiting()
    assert next_place(rules, bets, shoe[:10], taken) == (Target.DEALER, 0, 0)
    done = replay(rules, bets, shoe, taken)
    assert done.deal is not None and done.deal.finished and not done.waiting
    assert next_place(rules, bets, shoe, taken) is None
    assert done.deal.settlements()["e1"] == Settlement(Outcome.WIN, 20)
