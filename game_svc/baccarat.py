"""Punto banco baccarat: the fixed third-card rules, the result of a coup, and payouts.

Deal order: player, banker, player, banker; then maybe a third card to the player, then
maybe one to the banker. Nobody chooses: the rules below decide every draw, so the same
function both deals RNG rounds and checks a studio's card events (a card the rules do not
call for is invalid).

- Either hand totals 8 or 9 on two cards (a natural): no more cards.
- Player draws on 0-5, stands on 6-7.
- Player stood: banker draws on 0-5, stands on 6-7.
- Player drew a third card worth ``t``: banker draws on 0-2 always; on 3 unless ``t`` is 8;
  on 4 if ``t`` is 2-7; on 5 if ``t`` is 4-7; on 6 if ``t`` is 6-7; stands on 7.

Payouts: Player 1:1, Banker 0.95:1 (rounded down, see ``money``), Tie 8:1, both pair
bets 11:1; Player and Banker bets push on a tie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from game_svc.bets import BetType, InvalidBet, Spot, require_empty
from game_svc.cards import Card
from game_svc.money import Odds, Settlement, lose, push, win


class Side(IntEnum):
    """Who a card goes to; values equal ``casino.common.v1.CardTarget``."""

    PLAYER = 1
    BANKER = 2


class Winner(IntEnum):
    """Values equal ``casino.common.v1.BaccaratWinner``."""

    PLAYER = 1
    BANKER = 2
    TIE = 3


ODDS: dict[BetType, Odds] = {
    BetType.BACCARAT_PLAYER: Odds(1),
    BetType.BACCARAT_BANKER: Odds(19, 20),
    BetType.BACCARAT_TIE: Odds(8),
    BetType.BACCARAT_PLAYER_PAIR: Odds(11),
    BetType.BACCARAT_BANKER_PAIR: Odds(11),
}
BET_TYPES = frozenset(ODDS)


def total(hand: Sequence[Card]) -> int:
    return sum(card.baccarat_value for card in hand) % 10


def player_draws(player_total: int) -> bool:
    """The player's rule on two cards (no natural on the table): draw on 0-5."""
    return player_total <= 5


def banker_draws(banker_total: int, player_third: Card | None) -> bool:
    """The banker's rule on two cards (no natural on the table), given the player's third."""
    if player_third is None:
        return banker_total <= 5
    t = player_third.baccarat_value
    if banker_total <= 2:
        return True
    if banker_total == 3:
        return t != 8
    if banker_total == 4:
        return 2 <= t <= 7
    if banker_total == 5:
        return 4 <= t <= 7
    if banker_total == 6:
        return 6 <= t <= 7
    return False


def next_card(player: Sequence[Card], banker: Sequence[Card]) -> Side | None:
    """Who receives the next card of the coup, or None when the coup is complete.

    Raises ValueError when the hands could not have been dealt under the rules.
    """
    dealt = len(player) + len(banker)
    if dealt < 4:
        if len(player) != (dealt + 1) // 2 or len(banker) != dealt // 2:
            raise ValueError("the first four cards alternate player, banker, player, banker")
        return Side.PLAYER if dealt % 2 == 0 else Side.BANKER
    if len(player) < 2 or len(banker) < 2:
        raise ValueError("each hand gets two cards before any third card")
    player_two, banker_two = total(player[:2]), total(banker[:2])
    natural = player_two >= 8 or banker_two >= 8
    player_wants = not natural and player_draws(player_two)
    if len(player) > 2 + player_wants:
        raise ValueError("the player hand has a card the rules do not give it")
    if player_wants and len(player) == 2:
        if len(banker) > 2:
            raise ValueError("the player's third card comes before the banker's")
        return Side.PLAYER
    player_third = player[2] if len(player) == 3 else None
    banker_wants = not natural and banker_draws(banker_two, player_third)
    if len(banker) > 2 + banker_wants:
        raise ValueError("the banker hand has a card the rules do not give it")
    return Side.BANKER if banker_wants and len(banker) == 2 else None


@dataclass(frozen=True)
class Coup:
    """A complete baccarat coup (contract ``BaccaratResult``)."""

    player: tuple[Card, ...]
    banker: tuple[Card, ...]

    def __post_init__(self) -> None:
        if next_card(self.player, self.banker) is not None:
            raise ValueError("the coup is not complete: the rules call for another card")

    @property
    def player_total(self) -> int:
        return total(self.player)

    @property
    def banker_total(self) -> int:
        return total(self.banker)

    @property
    def winner(self) -> Winner:
        p, b = self.player_total, self.banker_total
        return Winner.PLAYER if p > b else Winner.BANKER if b > p else Winner.TIE

    @property
    def player_pair(self) -> bool:
        return self.player[0].rank == self.player[1].rank

    @property
    def banker_pair(self) -> bool:
        return self.banker[0].rank == self.banker[1].rank

    @property
    def natural(self) -> bool:
        return total(self.player[:2]) >= 8 or total(self.banker[:2]) >= 8


def deal(draw: Callable[[], Card]) -> tuple[Coup, tuple[tuple[Side, Card], ...]]:
    """Deal a coup from ``draw`` (a shoe); also return the cards in deal order with targets."""
    player: list[Card] = []
    banker: list[Card] = []
    order: list[tuple[Side, Card]] = []
    while (side := next_card(player, banker)) is not None:
        card = draw()
        (player if side is Side.PLAYER else banker).append(card)
        order.append((side, card))
    return Coup(tuple(player), tuple(banker)), tuple(order)


def validate(spot: Spot) -> None:
    if spot.bet_type not in BET_TYPES:
        raise InvalidBet("bet_type", f"{spot.bet_type.name} is not a baccarat bet")
    require_empty(spot, "numbers", "group", "seat")


def settle(bet_type: BetType, stake: int, coup: Coup) -> Settlement:
    """Settle one bet on a complete coup."""
    odds = ODDS.get(bet_type)
    if odds is None:
        raise ValueError(f"{bet_type.name} is not a baccarat bet")
    winner = coup.winner
    if bet_type is BetType.BACCARAT_PLAYER or bet_type is BetType.BACCARAT_BANKER:
        if winner is Winner.TIE:
            return push(stake)
        mine = Winner.PLAYER if bet_type is BetType.BACCARAT_PLAYER else Winner.BANKER
        return win(stake, odds) if winner is mine else lose()
    if bet_type is BetType.BACCARAT_TIE:
        won = winner is Winner.TIE
    elif bet_type is BetType.BACCARAT_PLAYER_PAIR:
        won = coup.player_pair
    elif bet_type is BetType.BACCARAT_BANKER_PAIR:
        won = coup.banker_pair
    else:
        raise AssertionError(bet_type)
    return win(stake, odds) if won else lose()
