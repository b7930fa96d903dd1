"""What an RNG draw means for each game, and how bets settle on it. Pure: no I/O, no Protobuf.

A roulette round draws one pocket; a baccarat round draws a freshly shuffled 8-deck shoe
and deals one coup from its top by the third-card rules, so the RNG's signed outcome fixes
every card and anyone can replay the deal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from game_svc import baccarat, roulette
from game_svc.baccarat import Coup, Side
from game_svc.bets import Spot
from game_svc.cards import Shoe
from game_svc.money import Settlement
from game_svc.round_hash import DealtCard, Target, round_hash

BACCARAT_DECKS = 8


class Game(IntEnum):
    """Values equal ``casino.common.v1.GameType``."""

    ROULETTE = 1
    BACCARAT = 2
    BLACKJACK = 3


@dataclass(frozen=True)
class Drawn:
    """A round's result: the pocket (roulette) or the coup and its cards in deal order."""

    game: Game
    pocket: int | None = None
    coup: Coup | None = None
    dealt: tuple[DealtCard, ...] = ()

    def settle(self, spot: Spot, stake: int) -> Settlement:
        if self.pocket is not None:
            return roulette.settle(spot, stake, self.pocket)
        if self.coup is not None:
            return baccarat.settle(spot.bet_type, stake, self.coup)
        raise ValueError(f"{self.game.name} rounds are not drawn by the RNG")

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
