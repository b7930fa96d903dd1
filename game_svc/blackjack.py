"""Blackjack: hand values, a seat's decisions, the dealer's rule, settlement and the timer.

House rules, fixed unless ``Rules`` says otherwise (the contract's ``BlackjackOptions``):

- 1 to 8 decks; the dealer stands on all 17s (S17) or hits soft 17 (H17).
- The dealer takes a hole card face down and peeks when the upcard is an ace or a
  ten-value card: a dealer blackjack ends the round before any decision, so only the
  original stakes are lost (a player blackjack pushes).
- Blackjack (ace and ten-value as the first two cards of an unsplit hand) pays 3:2;
  other wins pay 1:1; equal totals push. Winnings round down (see ``money``).
- Double on any first two cards, also after a split when ``double_after_split``.
- Split two cards of equal value (10-J is a pair) while the seat has fewer than
  ``max_hands_per_seat`` hands (2 means one split). Split aces take one card each and
  stand; a two-card 21 after a split counts 21, not blackjack.
- A hand totalling 21 stands by itself.
- Insurance, offered when the dealer shows an ace, costs half the seat stake (rounded down)
  and pays 2:1 when the dealer has blackjack.
- Bet behind follows hand 1 of its seat at its own stake: the seated player's double and
  split stakes are not followed.
- Seats 1 to ``seat_count`` (at most 7), bet behind unlimited. In infinite mode there are
  no seats (seat 0): every player gets the same first two cards and decides alone; a
  player's n-th drawn card is the n-th common card after the first two (``common_draw``).
- Each decision has a deadline; when it passes without a decision, STAND is applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import IntEnum
from functools import cached_property

from casino_kit.errors import FailedPrecondition
from game_svc.bets import BetType, InvalidBet, Spot, require_empty
from game_svc.cards import Card, Rank, ShoeEmpty
from game_svc.money import Odds, Settlement, lose, push, win
from game_svc.rounds import BetRequest

MAX_SEATS = 7
BLACKJACK_ODDS = Odds(3, 2)
EVEN_ODDS = Odds(1)
INSURANCE_ODDS = Odds(2)

Draw = Callable[[], Card]


class Action(IntEnum):
    """A player decision; values equal ``casino.common.v1.BlackjackAction``."""

    HIT = 1
    STAND = 2
    DOUBLE = 3
    SPLIT = 4
    INSURANCE = 5


class DecisionNotExpected(FailedPrecondition):
    def __init__(self, message: str) -> None:
        super().__init__("DECISION_NOT_EXPECTED", message)


class DecisionDeadlinePassed(FailedPrecondition):
    def __init__(self, message: str) -> None:
        super().__init__("DECISION_DEADLINE_PASSED", message)


@dataclass(frozen=True)
class Rules:
    """A table's blackjack rules; ranges as in the contract's ``BlackjackOptions``."""

    decks: int = 8
    dealer_hits_soft_17: bool = False
    double_after_split: bool = True
    max_hands_per_seat: int = 2
    infinite_mode: bool = False
    seat_count: int = MAX_SEATS
    decision_window_s: int = 15

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.decks <= 8:
            problems.append("decks must be 1 to 8")
        if not 1 <= self.max_hands_per_seat <= 4:
            problems.append("max_hands_per_seat must be 1 to 4")
        if not 3 <= self.decision_window_s <= 60:
            problems.append("decision_window_s must be 3 to 60")
        seats = range(0, 1) if self.infinite_mode else range(1, MAX_SEATS + 1)
        if self.seat_count not in seats:
            problems.append(f"seat_count must be in {seats.start}..{seats.stop - 1}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True, slots=True)
class HandValue:
    """A hand's best total; ``soft`` when an ace counts 11 in it."""

    total: int
    soft: bool

    @property
    def busted(self) -> bool:
        return self.total > 21


def value(cards: Iterable[Card]) -> HandValue:
    """Aces count 1, and one of them 11 when that does not bust the hand."""
    hard = 0
    ace = False
    for card in cards:
        hard += card.blackjack_value
        ace = ace or card.rank is Rank.ACE
    if ace and hard <= 11:
        return HandValue(hard + 10, True)
    return HandValue(hard, False)


def is_natural(cards: Sequence[Card]) -> bool:
    return len(cards) == 2 and value(cards).total == 21


@dataclass(frozen=True)
class Hand:
    """One player hand. ``split`` marks a hand made by splitting (no blackjack on it)."""

    cards: tuple[Card, ...] = ()
    doubled: bool = False
    split: bool = False
    stood: bool = False

    @cached_property
    def value(self) -> HandValue:
        return value(self.cards)

    @property
    def blackjack(self) -> bool:
        return not self.split and is_natural(self.cards)

    @property
    def busted(self) -> bool:
        return self.value.busted

    @property
    def is_pair(self) -> bool:
        return len(self.cards) == 2 and (
            self.cards[0].blackjack_value == self.cards[1].blackjack_value
        )

    @property
    def split_aces(self) -> bool:
        return self.split and self.cards[0].rank is Rank.ACE

    @property
    def finished(self) -> bool:
        """No more decisions: stood, busted, 21, doubled, or a split ace with its card."""
        if len(self.cards) < 2:
            return False
        return (
            self.stood
            or self.doubled
            or self.value.total >= 21
            or (self.split_aces and len(self.cards) == 2)
        )

    def stake(self, base: int) -> int:
        """The hand's total stake: the seat stake, twice when doubled."""
        return base * 2 if self.doubled else base


@dataclass(frozen=True)
class SeatPlay:
    """The hands of one seat (or one player in infinite mode), played left to right.

    Immutable: ``apply`` returns the next state, so a decision that cannot complete (the
    shoe or the common cards ran short) changes nothing.
    """

    rules: Rules
    hands: tuple[Hand, ...]
    active: int = 0

    @classmethod
    def start(cls, rules: Rules, first_two: Sequence[Card]) -> SeatPlay:
        if len(first_two) != 2:
            raise ValueError("a seat starts with two cards")
        return cls(rules, (Hand(tuple(first_two)),))._advance(_no_draw)

    @property
    def done(self) -> bool:
        return self.active >= len(self.hands)

    @property
    def hand(self) -> Hand:
        """The hand waiting for a decision."""
        if self.done:
            raise DecisionNotExpected("every hand of the seat is finished")
        return self.hands[self.active]

    @property
    def drawn(self) -> int:
        """Cards this seat took after its first two."""
        return sum(len(hand.cards) for hand in self.hands) - 2

    def allowed_actions(self) -> frozenset[Action]:
        if self.done:
            return frozenset()
        hand = self.hand
        actions = {Action.HIT, Action.STAND}
        if len(hand.cards) == 2 and (not hand.split or self.rules.double_after_split):
            actions.add(Action.DOUBLE)
        if hand.is_pair and len(self.hands) < self.rules.max_hands_per_seat:
            actions.add(Action.SPLIT)
        return frozenset(actions)

    def apply(self, action: Action, draw: Draw) -> SeatPlay:
        """The state after ``action`` on the active hand, taking cards from ``draw``."""
        if action not in self.allowed_actions():
            raise DecisionNotExpected(f"{action.name} is not allowed on this hand now")
        hand, i = self.hand, self.active
        new: tuple[Hand, ...]
        if action is Action.HIT:
            new = (replace(hand, cards=hand.cards + (draw(),)),)
        elif action is Action.STAND:
            new = (replace(hand, stood=True),)
        elif action is Action.DOUBLE:
            new = (replace(hand, cards=hand.cards + (draw(),), doubled=True),)
        else:
            new = (Hand(hand.cards[:1], split=True), Hand(hand.cards[1:], split=True))
        return replace(self, hands=self.hands[:i] + new + self.hands[i + 1 :])._advance(draw)

    def _advance(self, draw: Draw) -> SeatPlay:
        """Give a split hand its second card when it comes up; skip finished hands."""
        hands, active = list(self.hands), self.active
        while active < len(hands):
            if len(hands[active].cards) < 2:
                hands[active] = replace(hands[active], cards=hands[active].cards + (draw(),))
            if not hands[active].finished:
                break
            active += 1
        return replace(self, hands=tuple(hands), active=active)


def _no_draw() -> Card:
    raise AssertionError("a seat's first hand starts with two cards")


def common_draw(common: Sequence[Card], play: SeatPlay) -> Draw:
    """Infinite mode: the cards ``play`` takes next are the common cards after the ones it
    already took (``common`` holds every common card dealt so far, first two included).

    Raises ShoeEmpty when the player needs a common card not dealt yet: the table deals
    one and applies the decision again (``apply`` changed nothing).
    """
    position = 2 + play.drawn

    def draw() -> Card:
        nonlocal position
        if position >= len(common):
            raise ShoeEmpty(f"common card {position + 1} is not dealt yet")
        position += 1
        return common[position - 1]

    return draw


def dealer_peeks(upcard: Card) -> bool:
    """The dealer checks the hole card for blackjack under an ace or a ten-value card."""
    return upcard.blackjack_value in (1, 10)


def insurance_offered(upcard: Card) -> bool:
    """Insurance is offered (actions INSURANCE or STAND to decline) under an ace."""
    return upcard.rank is Rank.ACE


def dealer_must_hit(cards: Sequence[Card], rules: Rules) -> bool:
    hand = value(cards)
    return hand.total < 17 or (hand.total == 17 and hand.soft and rules.dealer_hits_soft_17)


def dealer_plays(plays: Iterable[SeatPlay]) -> bool:
    """The dealer draws only when some hand still needs comparing (not busted, not a
    blackjack, which is paid at once)."""
    return any(not h.busted and not h.blackjack for play in plays for h in play.hands)


def play_dealer(cards: Sequence[Card], draw: Draw, rules: Rules) -> tuple[Card, ...]:
    """The dealer's final cards: draw until the rule says stand."""
    hand = list(cards)
    while dealer_must_hit(hand, rules):
        hand.append(draw())
    return tuple(hand)


def settle_hand(hand: Hand, dealer: Sequence[Card], base_stake: int) -> Settlement:
    """Settle one finished hand against the dealer's final cards."""
    stake = hand.stake(base_stake)
    dealer_blackjack = is_natural(dealer)
    if hand.blackjack:
        return push(stake) if dealer_blackjack else win(stake, BLACKJACK_ODDS)
    if hand.busted or dealer_blackjack:
        return lose()
    dealer_total = value(dealer).total
    player_total = hand.value.total
    if dealer_total > 21 or player_total > dealer_total:
        return win(stake, EVEN_ODDS)
    return push(stake) if player_total == dealer_total else lose()


def settle_bet_behind(play: SeatPlay, dealer: Sequence[Card], stake: int) -> Settlement:
    """Bet behind follows hand 1 of the seat, without its double."""
    return settle_hand(replace(play.hands[0], doubled=False), dealer, stake)


def insurance_stake(seat_stake: int) -> int:
    """Half the seat stake, rounded down; a seat stake of 1 cannot be insured."""
    return seat_stake // 2


def settle_insurance(stake: int, dealer: Sequence[Card]) -> Settlement:
    return win(stake, INSURANCE_ODDS) if is_natural(dealer) else lose()


def initial_deal_order(seats: Iterable[int]) -> tuple[tuple[str, int], ...]:
    """Who gets the first cards: each seat in order, the dealer's upcard, each seat again,
    then the dealer's hole card face down. Seats are ("seat", n), the dealer ("dealer", 0)."""
    ordered = sorted(set(seats))
    first = tuple(("seat", seat) for seat in ordered)
    return first + (("dealer", 0),) + first + (("dealer", 0),)


def validate(spot: Spot, rules: Rules) -> None:
    """Check a PlaceBets spot against the table's seats (insurance comes by decision)."""
    require_empty(spot, "numbers", "group")
    if spot.bet_type is BetType.BLACKJACK_SEAT:
        if rules.infinite_mode:
            require_empty(spot, "seat")
        elif not 1 <= spot.seat <= rules.seat_count:
            raise InvalidBet("seat", f"must be 1 to {rules.seat_count}")
    elif spot.bet_type is BetType.BLACKJACK_BET_BEHIND:
        if rules.infinite_mode:
            raise InvalidBet("bet_type", "infinite blackjack has no seats to bet behind")
        if not 1 <= spot.seat <= rules.seat_count:
            raise InvalidBet("seat", f"must be 1 to {rules.seat_count}")
    elif spot.bet_type is BetType.BLACKJACK_INSURANCE:
        raise InvalidBet("bet_type", "insurance is taken with SubmitDecision, not PlaceBets")
    else:
        raise InvalidBet("bet_type", f"{spot.bet_type.name} is not a blackjack bet")


def admit_seat_bet(bet: BetRequest, accepted: tuple[BetRequest, ...]) -> str | None:
    """SEAT_TAKEN for a seat bet on a seat another player already bet on this round (the
    round's ``Admission`` rule for blackjack). Bet behind is unlimited, and in infinite
    mode (seat 0) everyone plays their own hand."""
    seat = bet.spot.seat
    if bet.spot.bet_type is not BetType.BLACKJACK_SEAT or seat == 0:
        return None
    for other in accepted:
        if (
            other.spot.bet_type is BetType.BLACKJACK_SEAT
            and other.spot.seat == seat
            and other.player_id != bet.player_id
        ):
            return "SEAT_TAKEN"
    return None


@dataclass(frozen=True)
class Decision:
    """A decision taken on a hand; ``automatic`` when the deadline applied STAND."""

    action: Action
    automatic: bool = False


@dataclass(frozen=True)
class DecisionRequest:
    """One pending decision and its deadline, judged by the server clock passed in."""

    seat: int
    hand: int
    allowed: frozenset[Action]
    deadline: datetime

    @classmethod
    def open(
        cls, seat: int, hand: int, allowed: frozenset[Action], now: datetime, rules: Rules
    ) -> DecisionRequest:
        if Action.STAND not in allowed:
            raise ValueError("STAND, the default action, must always be allowed")
        return cls(seat, hand, allowed, now + timedelta(seconds=rules.decision_window_s))

    def decide(self, action: Action, now: datetime) -> Decision:
        """A player's decision: only before the deadline and only an allowed action."""
        if now >= self.deadline:
            raise DecisionDeadlinePassed(f"the deadline {self.deadline.isoformat()} passed")
        if action not in self.allowed:
            raise DecisionNotExpected(f"{action.name} is not among the allowed actions")
        return Decision(action)

    def expire(self, now: datetime) -> Decision | None:
        """STAND once the deadline has passed with no decision, else None (keep waiting)."""
        return Decision(Action.STAND, automatic=True) if now >= self.deadline else None
