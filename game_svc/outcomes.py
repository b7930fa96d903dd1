"""What an RNG draw means for each game, and how bets settle on it. Pure: no I/O, no Protobuf.

A roulette round draws one pocket; a baccarat round draws a freshly shuffled 8-deck shoe
and deals one coup from its top by the third-card rules, so the RNG's signed outcome fixes
every card and anyone can replay the deal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from game_svc import baccarat, roulette
from game_svc.baccarat import Coup, Side
from game_svc.cards import Shoe
from game_svc.money import Settlement
from game_svc.round_hash import DealtCard, Target, round_hash
from game_svc.rounds import BetRequest

BACCARAT_DECKS = 8


class Game(IntEnum):
    """Values equal ``casino.common.v1.GameType``."""

    ROULETTE = 1
    BACCARAT = 2
    BLACKJACK = 3


@dataclass(frozen=True)
class Drawn:
    """A round's result: the pocket (roulette), the coup and its cards in deal order
    (baccarat), or each bet's settlement (blackjack, where decisions shape the result)."""

    game: Game
    pocket: int | None = None
    coup: Coup | None = None
    dealt: tuple[DealtCard, ...] = ()
    payouts: Mapping[str, Settlement] | None = None

    def settle(self, bet: BetRequest) -> Settlement:
        if self.pocket is not None:
            return roulette.settle(bet.spot, bet.stake, self.pocket)
        if self.coup is not None:
            return baccarat.settle(bet.spot.bet_type, bet.stake, self.coup)
        if self.payouts is not None:
            return self.payouts[bet.bet_id]
        raise ValueError(f"a {self.game.name} round has no result to settle on")

    def round_hash(self, reference: str) -> str:
        return round_hash(reference, self.dealt, self.pocket)


def from_draw(game: Game, numbers: Sequence[int]) -> Drawn:
    """The result fixed by the RNG outcome ``numbers`` (a pocket, or a shuffled shoe)."""
    if game is Game.ROULETTE:
        (pocket,) = numbers
        roulette.check_pocket(pocket)
        return Drawn(game, pocket=pocket)
    if game is Game.BACCARAT:
        shoe = Shoe.from_indexes(numbers, BACCARAT_DECKS)
        coup, order = baccarat.deal(shoe.deal)
        dealt = tuple(
            DealtCard(i, Target.PLAYER if side is Side.PLAYER else Target.BANKER, card)
            for i, (side, card) in enumerate(order, 1)
        )
        return Drawn(game, coup=coup, dealt=dealt)
    raise ValueError(f"{game.name} rounds are not drawn by the RNG")
