"""A blackjack deal at a table: the round's rules applied to the bets that staked it.

Pure: cards come from the shoe the RNG shuffled, decisions from the caller. On top of
``BlackjackRound`` it keeps what the table needs:

- which bets play which hand: a seat's bets play its hand 1; the extra bet of a SPLIT
  plays the hand the split makes; the extra bet of a DOUBLE doubles its hand; insurance
  and bets behind settle on their own;
- every card dealt, named by target, seat, hand and deal index, as the table publishes
  it: the dealer's hole card face down until the round finishes, then revealed;
- each bet's settlement, once the round is finished.

Seats mode keys hands by seat; infinite mode by player id, and the common cards that every
player's hand shares are dealt to seat 0, hand 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from game_svc import blackjack
from game_svc.bets import BetType, Spot
from game_svc.blackjack import Action, DecisionNotExpected, Hand, Rules
from game_svc.blackjack_round import BlackjackRound, Key, Stage
from game_svc.cards import Card, ShoeEmpty
from game_svc.money import Settlement
from game_svc.round_hash import DealtCard, Target
from game_svc.rounds import BetRequest

EXTRA_STAKED = frozenset({Action.DOUBLE, Action.SPLIT, Action.INSURANCE})


@dataclass(frozen=True)
class Dealt:
    """A card dealt; the hole card is published face down (its value kept for the hash)."""

    card: DealtCard
    face_down: bool = False


@dataclass(frozen=True)
class Revealed:
    """The hole card turned over."""

    deal_index: int
    card: Card


Step = Dealt | Revealed


class Deal:
    """One round's cards, hands and bets after betting closed."""

    def __init__(self, rules: Rules, bets: Sequence[BetRequest], draw: Callable[[], Card]) -> None:
        self.rules = rules
        self._draw = draw
        self.players: dict[Key, str] = {}
        self.hand_bets: dict[Key, list[list[BetRequest]]] = {}
        self.insurance: dict[Key, BetRequest] = {}
        self.behind: list[BetRequest] = []
        for bet in bets:
            if bet.spot.bet_type is BetType.BLACKJACK_BET_BEHIND:
                self.behind.append(bet)
                continue
            key = self.key_of(bet.player_id, bet.spot.seat)
            self.players[key] = bet.player_id
            self.hand_bets.setdefault(key, [[]])[0].append(bet)
        stakes = {key: sum(b.stake for b in hands[0]) for key, hands in self.hand_bets.items()}
        self.round = BlackjackRound(rules, stakes, self._draw)
        self.dealt: list[DealtCard] = []
        self.steps: list[Step] = []
        self._revealed = False
        self._hole = 0
        self._initial_cards()

    # -- who plays what ---------------------------------------------------------------------

    def key_of(self, player_id: str, seat: int) -> Key:
        return player_id if self.rules.infinite_mode else seat

    def seat_of(self, key: Key) -> int:
        return 0 if isinstance(key, str) else key

    def owner(self, player_id: str, seat: int, hand: int) -> Key:
        """The key of ``player_id``'s hand ``hand`` at ``seat``, if it is awaited now."""
        key = self.key_of(player_id, seat)
        if self.players.get(key) != player_id:
            raise DecisionNotExpected(f"player {player_id} has no hand at seat {seat}")
        if key not in self.round.awaiting():
            raise DecisionNotExpected(f"no decision is expected at seat {seat} now")
        if hand != self.hand_number(key):
            raise DecisionNotExpected(f"hand {self.hand_number(key)} decides now, not {hand}")
        return key

    def hand_number(self, key: Key) -> int:
        """The hand a decision of ``key`` applies to now (1 while insurance is offered)."""
        if self.round.stage is Stage.INSURANCE:
            return 1
        return self.round.plays[key].active + 1

    def extra_stake(self, key: Key, action: Action) -> int:
        """What ``action`` stakes on top: the seat stake to double or split, half of it to
        insure, nothing otherwise."""
        base = self.round.stakes[key]
        if action is Action.INSURANCE:
            return blackjack.insurance_stake(base)
        return base if action in (Action.DOUBLE, Action.SPLIT) else 0

    def extra_spot(self, key: Key, action: Action) -> Spot:
        kind = BetType.BLACKJACK_INSURANCE if action is Action.INSURANCE else BetType.BLACKJACK_SEAT
        return Spot(kind, seat=self.seat_of(key))

    @property
    def bets(self) -> tuple[BetRequest, ...]:
        """Every bet the deal settles: seat bets, extra bets, insurance, bets behind."""
        seated = [bet for hands in self.hand_bets.values() for hand in hands for bet in hand]
        return (*seated, *self.insurance.values(), *self.behind)

    # -- decisions --------------------------------------------------------------------------

    def decide(self, key: Key, action: Action, extra: BetRequest | None = None) -> list[Step]:
        """Apply ``key``'s decision (``extra`` is the extra bet it staked, if it stakes one);
        returns the cards it dealt, in deal order."""
        if (action in EXTRA_STAKED) != (extra is not None):
            raise ValueError(f"{action.name} needs an extra bet exactly when it stakes one")
        stage = self.round.stage
        before_hands = self.round.plays[key].hands if stage is Stage.PLAYING else ()
        active = self.round.plays[key].active
        before_common = len(self.round.common)
        before_dealer = len(self.round.dealer)
        self.round.decide(key, action, self._draw)
        if extra is not None:
            if action is Action.INSURANCE:
                self.insurance[key] = extra
            elif action is Action.DOUBLE:
                self.hand_bets[key][active].append(extra)
            else:
                self.hand_bets[key].insert(active + 1, [extra])
        start = len(self.steps)
        if stage is Stage.PLAYING:
            if self.rules.infinite_mode:
                for card in self.round.common[before_common:]:
                    self._deal(Target.SEAT, card, 0, 1)
            else:
                self._deal_to_hands(key, action, before_hands, active)
        self._dealer_cards(before_dealer)
        return self.steps[start:]

    def _deal_to_hands(
        self, key: Key, action: Action, before: tuple[Hand, ...], active: int
    ) -> None:
        """Name the cards a decision gave ``key``'s hands: new cards per hand, left to right,
        which is the order the rules deal them."""
        had = [len(hand.cards) for hand in before]
        if action is Action.SPLIT:
            had[active : active + 1] = [1, 1]
        for number, (hand, count) in enumerate(
            zip(self.round.plays[key].hands, had, strict=True), 1
        ):
            for card in hand.cards[count:]:
                self._deal(Target.SEAT, card, self.seat_of(key), number)

    # -- cards ------------------------------------------------------------------------------

    def _initial_cards(self) -> None:
        """Each key's first card, the upcard, each key's second card, the hole card face
        down; in infinite mode the two common cards stand for every key's."""
        up, hole = self.round.dealer[:2]
        if self.rules.infinite_mode:
            first, second = self.round.common[:2]
            self._deal(Target.SEAT, first, 0, 1)
            self._deal(Target.DEALER, up)
            self._deal(Target.SEAT, second, 0, 1)
        else:
            for key, play in self.round.plays.items():
                self._deal(Target.SEAT, play.hands[0].cards[0], self.seat_of(key), 1)
            self._deal(Target.DEALER, up)
            for key, play in self.round.plays.items():
                self._deal(Target.SEAT, play.hands[0].cards[1], self.seat_of(key), 1)
        self._deal(Target.DEALER, hole, face_down=True)
        self._hole = len(self.dealt)
        self._dealer_cards(2)

    def _dealer_cards(self, before: int) -> None:
        """Once the round is finished: the hole card turned, then the dealer's draws."""
        if self.round.stage is not Stage.FINISHED:
            return
        if not self._revealed:
            self._revealed = True
            self.steps.append(Revealed(self._hole, self.round.dealer[1]))
        for card in self.round.dealer[before:]:
            self._deal(Target.DEALER, card)

    def _deal(
        self, target: Target, card: Card, seat: int = 0, hand: int = 0, face_down: bool = False
    ) -> None:
        dealt = DealtCard(len(self.dealt) + 1, target, card, seat, hand)
        self.dealt.append(dealt)
        self.steps.append(Dealt(dealt, face_down))

    # -- the end ----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.round.stage is Stage.FINISHED

    def settlements(self) -> dict[str, Settlement]:
        """Every bet's settlement: each hand's bets at their own stakes (a doubled hand's
        two bets each settle as the undoubled hand), insurance, bets behind."""
        settled: dict[str, Settlement] = {}
        dealer = self.round.dealer
        for key, hands in self.hand_bets.items():
            for hand, bets in zip(self.round.plays[key].hands, hands, strict=True):
                single = replace(hand, doubled=False)
                for bet in bets:
                    settled[bet.bet_id] = blackjack.settle_hand(single, dealer, bet.stake)
        for bet in self.insurance.values():
            settled[bet.bet_id] = blackjack.settle_insurance(bet.stake, dealer)
        for bet in self.behind:
            settled[bet.bet_id] = self.round.bet_behind(bet.spot.seat, bet.stake)
        return settled


# -- a studio's deal: cards come from its scanner, one event at a time ----------------------

PROBES = (Card.parse("2C"),) * 24
"""Stand for the cards still to come when asking where the next one goes (a card's place
is fixed before its value is seen): enough to finish any one step of the deal."""


@dataclass(frozen=True)
class Taken:
    """A decision taken on a studio deal, with the extra bet it staked."""

    key: Key
    action: Action
    extra: BetRequest | None = None


@dataclass
class Replay:
    """A studio deal rebuilt from the cards scanned so far and the decisions taken.

    ``deal`` is None until the first cards are all dealt. ``waiting`` is true while a
    taken decision, or the dealer, needs a card the studio has not dealt yet.
    """

    deal: Deal | None
    waiting: bool
    consumed: int


def replay(
    rules: Rules, bets: Sequence[BetRequest], cards: Sequence[Card], taken: Sequence[Taken]
) -> Replay:
    """Deal the scanned ``cards`` in order and apply ``taken``, as far as the cards go.

    Rebuilding from the start each time keeps one source of truth: the rules decide where
    every card goes, the studio only says which card it was.
    """
    used = 0

    def draw() -> Card:
        nonlocal used
        if used >= len(cards):
            raise ShoeEmpty(f"card {used + 1} is not dealt yet")
        used += 1
        return cards[used - 1]

    try:
        deal = Deal(rules, bets, draw)
    except ShoeEmpty:
        return Replay(None, True, used)
    for decision in taken:
        try:
            deal.decide(decision.key, decision.action, decision.extra)
        except ShoeEmpty:
            return Replay(deal, True, used)
    waiting = not deal.finished and not deal.round.awaiting()  # the dealer's cards are due
    return Replay(deal, waiting, used)


def hole_index(rules: Rules, bets: Sequence[BetRequest]) -> int:
    """The deal index of the dealer's hole card: the last card of the first deal (two per
    seat, or two common cards in infinite mode, and two for the dealer)."""
    if rules.infinite_mode:
        return 4
    seats = {b.spot.seat for b in bets if b.spot.bet_type is BetType.BLACKJACK_SEAT}
    return 2 * len(seats) + 2


def next_place(
    rules: Rules, bets: Sequence[BetRequest], cards: Sequence[Card], taken: Sequence[Taken]
) -> tuple[Target, int, int] | None:
    """Where the next card goes, as (target, seat, hand); None when the deal takes no card
    now (a decision is awaited, or the deal is complete)."""
    probe = replay(rules, bets, [*cards, *PROBES], taken)
    index = len(cards) + 1
    if probe.consumed < index or probe.deal is None:
        return None
    return next((d.target, d.seat, d.hand) for d in probe.deal.dealt if d.deal_index == index)
