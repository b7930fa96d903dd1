"""Payout arithmetic in int64 minor units: the one place where a fractional payout rounds.

Rule: a winning payout is the stake plus ``stake * numerator // denominator``, so any
fraction of a minor unit is rounded **down**, in the house's favour, as is standard for
commission games. Banker at 0.95:1 on a stake of 15 pays 15 + 14 (14.25 rounded down);
blackjack at 3:2 on 5 pays 5 + 7. Payouts never use floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Outcome(IntEnum):
    """How a settled bet ended; values equal ``casino.common.v1.BetOutcome``."""

    WIN = 1
    LOSE = 2
    PUSH = 3


@dataclass(frozen=True)
class Odds:
    """A payout ratio "numerator to denominator" (35:1, 19:20 for 0.95:1, 3:2)."""

    numerator: int
    denominator: int = 1

    def winnings(self, stake: int) -> int:
        """The amount won on ``stake``, rounded down to the minor unit."""
        return stake * self.numerator // self.denominator


@dataclass(frozen=True)
class Settlement:
    """The outcome of one bet and the gross amount credited (stake included, 0 on a loss)."""

    outcome: Outcome
    payout: int


def win(stake: int, odds: Odds) -> Settlement:
    return Settlement(Outcome.WIN, stake + odds.winnings(stake))


def lose() -> Settlement:
    return Settlement(Outcome.LOSE, 0)


def push(stake: int) -> Settlement:
    return Settlement(Outcome.PUSH, stake)
