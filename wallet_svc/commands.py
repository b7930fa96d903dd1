"""The wallet's operations and their results as plain values: what server.py maps from and to.

Commands carry validated input only (server.py checks shapes, amounts and currencies first);
the engine decides everything that depends on stored state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wallet_svc.limits import Block, BlockKind, Change, LimitKind, Period


class KycStatus(StrEnum):
    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OpenAccount:
    player_id: str
    currency: str


@dataclass(frozen=True, slots=True)
class Deposit:
    player_id: str
    currency: str
    amount: int
    external_ref: str = ""


@dataclass(frozen=True, slots=True)
class Withdraw:
    player_id: str
    currency: str
    amount: int
    external_ref: str = ""


@dataclass(frozen=True, slots=True)
class StakeItem:
    bet_id: str
    player_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class PlaceStakes:
    table_id: str
    round_id: str
    fencing_token: int
    currency: str
    stakes: tuple[StakeItem, ...]


@dataclass(frozen=True, slots=True)
class PayoutItem:
    bet_id: str
    player_id: str
    payout: int


@dataclass(frozen=True, slots=True)
class SettleRound:
    table_id: str
    round_id: str
    fencing_token: int
    currency: str
    """The payouts' currency; empty when there is no payout."""
    payouts: tuple[PayoutItem, ...]


@dataclass(frozen=True, slots=True)
class RefundRound:
    table_id: str
    round_id: str
    fencing_token: int
    reason: str


@dataclass(frozen=True, slots=True)
class SetKyc:
    player_id: str
    status: KycStatus
    operator_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class LimitRequest:
    kind: LimitKind
    period: Period
    amount: int | None
    """None removes the limit."""


@dataclass(frozen=True, slots=True)
class SetLimits:
    player_id: str
    currency: str
    limits: tuple[LimitRequest, ...]
    operator_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SetBlock:
    player_id: str
    kind: BlockKind
    ends_us: int | None
    operator_id: str
    reason: str


Command = (
    OpenAccount
    | Deposit
    | Withdraw
    | PlaceStakes
    | SettleRound
    | RefundRound
    | SetKyc
    | SetLimits
    | SetBlock
)


@dataclass(frozen=True, slots=True)
class AccountOpened:
    account_id: int
    player_id: str
    currency: str
    kyc: KycStatus
    created_us: int


@dataclass(frozen=True, slots=True)
class Moved:
    """A deposit or withdrawal: its player posting and the balance after it."""

    entry_id: int
    currency: str
    balance_after: int
    created_us: int


@dataclass(frozen=True, slots=True)
class StakeOutcome:
    bet_id: str
    accepted: bool
    reason: str
    balance_after: int | None


@dataclass(frozen=True, slots=True)
class StakesPlaced:
    currency: str
    outcomes: tuple[StakeOutcome, ...]


@dataclass(frozen=True, slots=True)
class RoundSettled:
    round_id: str
    currency: str
    bet_count: int
    total_stake: int
    total_payout: int
    at_us: int


@dataclass(frozen=True, slots=True)
class RoundRefunded:
    round_id: str
    currency: str
    bet_count: int
    total: int
    at_us: int


@dataclass(frozen=True, slots=True)
class KycSet:
    player_id: str
    status: KycStatus
    at_us: int


@dataclass(frozen=True, slots=True)
class LimitsSet:
    currency: str
    changes: tuple[tuple[LimitRequest, Change], ...]


@dataclass(frozen=True, slots=True)
class BlockSet:
    block: Block


Result = (
    AccountOpened
    | Moved
    | StakesPlaced
    | RoundSettled
    | RoundRefunded
    | KycSet
    | LimitsSet
    | BlockSet
)
