"""Bet types, bet spots and table limits, as pure values shared by every game's rules.

Enum values equal the contract's numbers (``casino.common.v1.BetType``), so the server
adapter converts with ``BetType(proto_value)`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from casino_kit.errors import FieldViolation, InvalidArgument


class BetType(IntEnum):
    """What a bet is on; see ``casino.common.v1.BetType`` for each one's rule and payout."""

    ROULETTE_STRAIGHT = 1
    ROULETTE_SPLIT = 2
    ROULETTE_STREET = 3
    ROULETTE_CORNER = 4
    ROULETTE_SIX_LINE = 5
    ROULETTE_COLUMN = 6
    ROULETTE_DOZEN = 7
    ROULETTE_RED = 8
    ROULETTE_BLACK = 9
    ROULETTE_ODD = 10
    ROULETTE_EVEN = 11
    ROULETTE_LOW = 12
    ROULETTE_HIGH = 13
    BACCARAT_PLAYER = 20
    BACCARAT_BANKER = 21
    BACCARAT_TIE = 22
    BACCARAT_PLAYER_PAIR = 23
    BACCARAT_BANKER_PAIR = 24
    BLACKJACK_SEAT = 30
    BLACKJACK_BET_BEHIND = 31
    BLACKJACK_INSURANCE = 32

    @property
    def game(self) -> str:
        return self.name.split("_", 1)[0].lower()


@dataclass(frozen=True)
class Spot:
    """Where a bet lies: its type plus the positions the type needs (contract ``BetSpot``)."""

    bet_type: BetType
    numbers: tuple[int, ...] = ()
    group: int = 0
    seat: int = 0


class InvalidBet(InvalidArgument):
    """A spot whose positions do not fit its type: INVALID_ARGUMENT, reason INVALID_BET.

    ``field`` is relative to the spot (``numbers``, ``group``, ``seat``); the adapter
    prefixes the bet's path in the request.
    """

    def __init__(self, field: str, description: str) -> None:
        super().__init__([FieldViolation(field, description)], reason="INVALID_BET")
        self.field = field
        self.description = description


def require_empty(spot: Spot, *fields: str) -> None:
    """Positions a type does not use must be left at their zero value."""
    for name in fields:
        if getattr(spot, name):
            raise InvalidBet(name, f"must be empty for {spot.bet_type.name}")


@dataclass(frozen=True)
class BetLimit:
    """The stake range of one bet type: ``max_stake`` caps one player's total on one spot."""

    min_stake: int
    max_stake: int

    def __post_init__(self) -> None:
        if not 0 < self.min_stake <= self.max_stake:
            raise ValueError(f"bad limit {self.min_stake}..{self.max_stake}")


@dataclass(frozen=True)
class TableLimits:
    """Per-type limits (a type without one is not offered) and an optional per-round cap."""

    per_type: Mapping[BetType, BetLimit] = field(default_factory=dict)
    max_round_stake: int | None = None

    def check(
        self, bet_type: BetType, stake: int, *, on_spot_before: int = 0, in_round_before: int = 0
    ) -> str | None:
        """The rejection reason for a new stake, or None when the limits allow it.

        ``on_spot_before`` is what the player already has on the same spot this round and
        ``in_round_before`` what they have staked in the round over all spots.
        """
        limit = self.per_type.get(bet_type)
        if limit is None:
            return "INVALID_BET"
        if stake < limit.min_stake:
            return "BET_BELOW_TABLE_MIN"
        if on_spot_before + stake > limit.max_stake:
            return "BET_ABOVE_TABLE_MAX"
        if self.max_round_stake is not None and in_round_before + stake > self.max_round_stake:
            return "BET_ABOVE_TABLE_MAX"
        return None
