"""European single-zero roulette: bet positions, which pockets they cover, and payouts.

The layout is the standard one: 1 to 36 in twelve rows of three (row ``r`` holds
``3r+1, 3r+2, 3r+3``), with 0 at the head of the three columns. Zero bets allowed, as the
contract says: splits 0-1, 0-2, 0-3; streets (trios) 0-1-2 and 0-2-3; the corner 0-1-2-3
("first four"). Every inside bet lists its pockets in ascending order.

Every bet covering ``k`` pockets pays ``36/k - 1`` to one, so each has the same
return to player, 36/37 (97.297%); even-money bets lose on 0 (no la partage).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from game_svc.bets import BetType, InvalidBet, Spot, require_empty
from game_svc.money import Odds, Settlement, lose, win

POCKETS = range(37)
RED = frozenset({1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36})
BLACK = frozenset(range(1, 37)) - RED


def _row(r: int) -> tuple[int, ...]:
    return (3 * r + 1, 3 * r + 2, 3 * r + 3)


def _inside_positions() -> dict[BetType, frozenset[tuple[int, ...]]]:
    splits = {(0, 1), (0, 2), (0, 3)}
    splits |= {(n, n + 1) for n in range(1, 37) if n % 3 != 0}  # side by side in a row
    splits |= {(n, n + 3) for n in range(1, 34)}  # one above the other in a column
    streets = {_row(r) for r in range(12)} | {(0, 1, 2), (0, 2, 3)}
    corners = {(n, n + 1, n + 3, n + 4) for n in range(1, 33) if n % 3 != 0} | {(0, 1, 2, 3)}
    six_lines = {_row(r) + _row(r + 1) for r in range(11)}
    return {
        BetType.ROULETTE_STRAIGHT: frozenset((n,) for n in POCKETS),
        BetType.ROULETTE_SPLIT: frozenset(splits),
        BetType.ROULETTE_STREET: frozenset(streets),
        BetType.ROULETTE_CORNER: frozenset(corners),
        BetType.ROULETTE_SIX_LINE: frozenset(six_lines),
    }


INSIDE = _inside_positions()
"""Every valid position of each inside bet type: 37 straights, 60 splits, 14 streets,
23 corners, 11 six lines."""

_OUTSIDE: dict[BetType, frozenset[int]] = {
    BetType.ROULETTE_RED: RED,
    BetType.ROULETTE_BLACK: BLACK,
    BetType.ROULETTE_ODD: frozenset(range(1, 37, 2)),
    BetType.ROULETTE_EVEN: frozenset(range(2, 37, 2)),
    BetType.ROULETTE_LOW: frozenset(range(1, 19)),
    BetType.ROULETTE_HIGH: frozenset(range(19, 37)),
}

ODDS: dict[BetType, Odds] = {
    BetType.ROULETTE_STRAIGHT: Odds(35),
    BetType.ROULETTE_SPLIT: Odds(17),
    BetType.ROULETTE_STREET: Odds(11),
    BetType.ROULETTE_CORNER: Odds(8),
    BetType.ROULETTE_SIX_LINE: Odds(5),
    BetType.ROULETTE_COLUMN: Odds(2),
    BetType.ROULETTE_DOZEN: Odds(2),
} | {bet_type: Odds(1) for bet_type in _OUTSIDE}

BET_TYPES = frozenset(ODDS)


@dataclass(frozen=True)
class RouletteBet:
    """A validated roulette bet: its spot and the pockets it wins on."""

    spot: Spot
    covers: frozenset[int]

    @property
    def odds(self) -> Odds:
        return ODDS[self.spot.bet_type]

    def settle(self, stake: int, pocket: int) -> Settlement:
        check_pocket(pocket)
        return win(stake, self.odds) if pocket in self.covers else lose()


def check_pocket(pocket: int) -> None:
    if pocket not in POCKETS:
        raise ValueError(f"pocket {pocket} is not 0 to 36")


def validate(spot: Spot) -> RouletteBet:
    """The bet for ``spot``, or InvalidBet naming the position that does not fit its type."""
    bet_type = spot.bet_type
    if bet_type not in BET_TYPES:
        raise InvalidBet("bet_type", f"{bet_type.name} is not a roulette bet")
    require_empty(spot, "seat")
    if bet_type in INSIDE:
        require_empty(spot, "group")
        numbers = spot.numbers
        if list(numbers) != sorted(set(numbers)):
            raise InvalidBet("numbers", "must list distinct pockets in ascending order")
        if numbers not in INSIDE[bet_type]:
            size = len(next(iter(INSIDE[bet_type])))
            raise InvalidBet(
                "numbers", f"{list(numbers)} is not a {bet_type.name} ({size} adjacent pockets)"
            )
        return RouletteBet(spot, frozenset(numbers))
    require_empty(spot, "numbers")
    if bet_type in (BetType.ROULETTE_COLUMN, BetType.ROULETTE_DOZEN):
        if spot.group not in (1, 2, 3):
            raise InvalidBet("group", "must be 1, 2 or 3")
        if bet_type is BetType.ROULETTE_COLUMN:
            covers = frozenset(range(spot.group, 37, 3))
        else:
            covers = frozenset(range(12 * spot.group - 11, 12 * spot.group + 1))
        return RouletteBet(spot, covers)
    require_empty(spot, "group")
    return RouletteBet(spot, _OUTSIDE[bet_type])


def settle(spot: Spot, stake: int, pocket: int) -> Settlement:
    """Settle one bet on ``pocket``: the stake plus winnings, or nothing."""
    return _validated(spot).settle(stake, pocket)


@functools.lru_cache(maxsize=4096)
def _validated(spot: Spot) -> RouletteBet:
    """A round settles thousands of bets on a few hundred distinct spots."""
    return validate(spot)
