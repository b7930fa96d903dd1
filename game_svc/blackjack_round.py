"""One blackjack round at a table: the deal, insurance, the players' turns, the dealer, settlement.

Pure and synchronous: cards come from a ``draw`` callable (the shoe) and decisions from the
caller, who also runs each decision's timer (``blackjack.DecisionRequest``) and passes
STAND when it expires. One transition method moves the stage and logs old -> new.

Seats mode: seats play in ascending order, one decision at a time; bet behind follows its
seat. Infinite mode: every player's hand starts from the same two common cards and all
players decide at once; a player's n-th extra card is the n-th common card after the first
two, and the table deals another common card from the shoe when a player first needs it.
Hands are keyed by seat number (seats mode) or player id (infinite mode).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from game_svc import blackjack
from game_svc.blackjack import Action, DecisionNotExpected, Rules, SeatPlay
from game_svc.cards import Card, ShoeEmpty
from game_svc.money import Settlement, push

log = logging.getLogger(__name__)

Key = int | str
Draw = Callable[[], Card]


class Stage(Enum):
    INSURANCE = "insurance"
    PLAYING = "playing"
    FINISHED = "finished"


_NEXT = {
    Stage.INSURANCE: frozenset({Stage.PLAYING, Stage.FINISHED}),
    Stage.PLAYING: frozenset({Stage.FINISHED}),
    Stage.FINISHED: frozenset[Stage](),
}


@dataclass(frozen=True)
class HandResult:
    """The settlement of one finished hand of a key, with its hand number (from 1)."""

    hand: int
    stake: int
    settlement: Settlement


@dataclass(frozen=True)
class KeyResult:
    """Everything a seat (or infinite-mode player) gets: each hand and the insurance."""

    hands: tuple[HandResult, ...]
    insurance: Settlement | None


class BlackjackRound:
    """The cards and decisions of one round after betting closed."""

    def __init__(self, rules: Rules, stakes: Mapping[Key, int], draw: Draw) -> None:
        """Deal the first cards: each key's first card, the dealer's upcard, each key's
        second card, the dealer's hole card (face down). With no stakes the dealer deals
        alone and the round finishes at once (bets behind empty seats push)."""
        if not rules.infinite_mode and not all(
            isinstance(k, int) and 1 <= k <= rules.seat_count for k in stakes
        ):
            raise ValueError(f"seats must be 1 to {rules.seat_count}")
        self.rules = rules
        # Seats play in ascending order; infinite-mode players all at once.
        self.stakes = dict(stakes) if rules.infinite_mode else dict(sorted(stakes.items()))
        self.common: list[Card] = []
        if rules.infinite_mode:
            first, up, second, hole = draw(), draw(), draw(), draw()
            self.common = [first, second]
            self.plays = {k: SeatPlay.start(rules, self.common) for k in self.stakes}
        else:
            firsts = {k: draw() for k in self.stakes}
            up = draw()
            seconds = {k: draw() for k in self.stakes}
            hole = draw()
            self.plays = {k: SeatPlay.start(rules, (firsts[k], seconds[k])) for k in self.stakes}
        self.dealer: tuple[Card, ...] = (up, hole)
        self.insurance: dict[Key, bool] = {}
        self._stage = Stage.INSURANCE
        if not blackjack.insurance_offered(up) or not self.awaiting():
            self._after_insurance(draw)

    @property
    def stage(self) -> Stage:
        return self._stage

    @property
    def upcard(self) -> Card:
        return self.dealer[0]

    def _set_stage(self, new: Stage) -> None:
        old = self._stage
        if new not in _NEXT[old]:
            raise DecisionNotExpected(f"round stage {old.value} -> {new.value} is not allowed")
        log.info("blackjack round: %s -> %s", old.value, new.value)
        self._stage = new

    def awaiting(self) -> tuple[Key, ...]:
        """The keys whose decision is expected now."""
        if self._stage is Stage.INSURANCE:
            return tuple(k for k in self.stakes if k not in self.insurance)
        if self._stage is Stage.FINISHED:
            return ()
        undecided = tuple(k for k, play in self.plays.items() if not play.done)
        return undecided if self.rules.infinite_mode else undecided[:1]

    def allowed(self, key: Key) -> frozenset[Action]:
        """What ``key`` may do now (STAND declines insurance in the insurance stage)."""
        if key not in self.awaiting():
            return frozenset()
        if self._stage is Stage.INSURANCE:
            if blackjack.insurance_stake(self.stakes[key]) == 0:
                return frozenset({Action.STAND})
            return frozenset({Action.INSURANCE, Action.STAND})
        return self.plays[key].allowed_actions()

    def decide(self, key: Key, action: Action, draw: Draw) -> None:
        """Apply ``key``'s decision; the round moves on when nobody else is awaited."""
        if action not in self.allowed(key):
            raise DecisionNotExpected(f"{action.name} is not expected from {key!r} now")
        if self._stage is Stage.INSURANCE:
            self.insurance[key] = action is Action.INSURANCE
            if not self.awaiting():
                self._after_insurance(draw)
            return
        play = self.plays[key]
        if self.rules.infinite_mode:
            while True:
                try:
                    self.plays[key] = play.apply(action, blackjack.common_draw(self.common, play))
                    break
                except ShoeEmpty:
                    self.common.append(draw())  # the first player to need it gets it dealt
        else:
            self.plays[key] = play.apply(action, draw)
        if not self.awaiting():
            self._finish(draw)

    def _after_insurance(self, draw: Draw) -> None:
        if blackjack.dealer_peeks(self.upcard) and blackjack.is_natural(self.dealer):
            self._set_stage(Stage.FINISHED)  # the hole card is turned: nobody plays
            return
        self._set_stage(Stage.PLAYING)
        if not self.awaiting():  # every hand is a natural
            self._finish(draw)

    def _finish(self, draw: Draw) -> None:
        if blackjack.dealer_plays(self.plays.values()):
            self.dealer = blackjack.play_dealer(self.dealer, draw, self.rules)
        self._set_stage(Stage.FINISHED)

    def result(self, key: Key) -> KeyResult:
        """How ``key``'s hands and insurance end; only once the round is finished."""
        if self._stage is not Stage.FINISHED:
            raise DecisionNotExpected("the round is not finished")
        stake = self.stakes[key]
        hands = tuple(
            HandResult(i + 1, hand.stake(stake), blackjack.settle_hand(hand, self.dealer, stake))
            for i, hand in enumerate(self.plays[key].hands)
        )
        insurance = None
        if self.insurance.get(key):
            insurance = blackjack.settle_insurance(blackjack.insurance_stake(stake), self.dealer)
        return KeyResult(hands, insurance)

    def bet_behind(self, seat: int, stake: int) -> Settlement:
        """Settle a bet behind ``seat`` (no seat bet there: the bet is pushed back)."""
        if self._stage is not Stage.FINISHED:
            raise DecisionNotExpected("the round is not finished")
        play = self.plays.get(seat)
        if play is None:
            return push(stake)
        return blackjack.settle_bet_behind(play, self.dealer, stake)
