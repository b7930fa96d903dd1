"""Double-entry postings: the only way money moves, and the rules for each kind of move.

A transfer is a balanced journal entry: legs on accounts of one currency whose signed amounts
sum to zero (credit positive, debit negative). Deposits and withdrawals move money between a
player and the cashier (the outside world, whose balance is minus what players paid in net);
stakes move it from players into a table's escrow; a settlement empties a round's share of the
escrow into payouts and the house; a refund gives it back. So the sum of every balance is zero,
and players + escrow + house = deposits - withdrawals, by construction.

Pure code: no I/O, no clock. The batch evaluator applies transfers to in-memory accounts that
the store loaded (locked) for the batch and writes the postings back.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from casino_kit.errors import FailedPrecondition

HOUSE_SHARDS = 16
"""House accounts per currency: settlements spread over them, so no single row is locked by
every round of every table."""

CASHIER_SHARDS = 16
"""Cashier accounts per currency, for the same reason, chosen by player."""

MAX_BALANCE = 1 << 62
"""No balance may leave [-MAX_BALANCE, MAX_BALANCE]: sums stay far inside int64."""


class AccountKind(StrEnum):
    PLAYER = "player"
    ESCROW = "escrow"
    HOUSE = "house"
    CASHIER = "cashier"


class EntryKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    STAKE = "stake"
    PAYOUT = "payout"
    REFUND = "refund"


MUST_COVER = frozenset({AccountKind.PLAYER, AccountKind.ESCROW})
"""Kinds whose balance never goes below zero: a player cannot spend money they do not have,
and a round cannot pay out money that was not staked (the house pays any excess)."""


def shard_of(text: str, shards: int) -> int:
    """A stable shard number for ``text`` (``hash()`` is salted per process; CRC32 is not)."""
    return zlib.crc32(text.encode()) % shards


def account_key(kind: AccountKind, currency: str, owner: str) -> str:
    """The natural key of an account: one per player, table or shard, and currency."""
    return f"{kind.value}:{currency}:{owner}"


def player_key(player_id: str, currency: str) -> str:
    return "player:" + currency + ":" + player_id  # account_key, inlined: one per stake


def escrow_key(table_id: str, currency: str) -> str:
    return account_key(AccountKind.ESCROW, currency, table_id)


def house_key(currency: str, round_id: str) -> str:
    return account_key(AccountKind.HOUSE, currency, str(shard_of(round_id, HOUSE_SHARDS)))


def cashier_key(currency: str, player_id: str) -> str:
    return account_key(AccountKind.CASHIER, currency, str(shard_of(player_id, CASHIER_SHARDS)))


@dataclass(slots=True)
class Account:
    """An account and its balance as the batch sees it (locked in the database)."""

    id: int
    kind: AccountKind
    currency: str
    owner: str
    balance: int = 0


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a transfer: a signed amount on one account, for one bet where it applies."""

    account_id: int
    amount: int
    bet_id: str = ""


class UnbalancedTransfer(ValueError):
    """A programming error: a rule produced legs that do not sum to zero."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """A balanced journal entry. Construction fails unless its legs sum to zero."""

    kind: EntryKind
    currency: str
    legs: tuple[Leg, ...]
    round_id: str = ""
    table_id: str = ""
    external_ref: str = ""

    def __post_init__(self) -> None:
        if len(self.legs) < 2:
            raise UnbalancedTransfer(f"{self.kind} needs two legs or more, got {self.legs}")
        if sum(leg.amount for leg in self.legs) != 0:
            raise UnbalancedTransfer(f"{self.kind} legs do not sum to zero: {self.legs}")
        if any(leg.amount == 0 for leg in self.legs):
            raise UnbalancedTransfer(f"{self.kind} has an empty leg: {self.legs}")


@dataclass(frozen=True, slots=True)
class BetShare:
    """A bet's part in a settlement or refund."""

    account_id: int
    bet_id: str
    stake: int
    payout: int = 0


def insufficient_funds(account: Account, amount: int) -> FailedPrecondition:
    return FailedPrecondition(
        "INSUFFICIENT_FUNDS",
        f"balance {account.balance} does not cover {amount}",
        metadata={"account_id": str(account.id)},
    )


def deposit(player: Account, cashier: Account, amount: int, external_ref: str = "") -> Transfer:
    """Money paid in: cashier -> player."""
    return Transfer(
        EntryKind.DEPOSIT,
        player.currency,
        (Leg(player.id, amount), Leg(cashier.id, -amount)),
        external_ref=external_ref,
    )


def withdrawal(player: Account, cashier: Account, amount: int, external_ref: str = "") -> Transfer:
    """Money paid out: player -> cashier."""
    return Transfer(
        EntryKind.WITHDRAWAL,
        player.currency,
        (Leg(player.id, -amount), Leg(cashier.id, amount)),
        external_ref=external_ref,
    )


def stakes(escrow: Account, shares: Sequence[BetShare], round_id: str, table_id: str) -> Transfer:
    """Stakes of one round: each player -> the table's escrow, one compound entry."""
    legs = [Leg(s.account_id, -s.stake, s.bet_id) for s in shares]
    legs.append(Leg(escrow.id, sum(s.stake for s in shares)))
    return Transfer(EntryKind.STAKE, escrow.currency, tuple(legs), round_id, table_id)


def settlement(
    escrow: Account,
    house: Account,
    shares: Sequence[BetShare],
    round_id: str,
    table_id: str,
) -> Transfer | None:
    """A round's settlement: its whole escrow out, payouts to players, the rest to the house.

    The house leg is stakes minus payouts: positive when the house wins the round, negative
    when it pays more than was staked. ``None`` when the round has no bet.
    """
    total_stake = sum(s.stake for s in shares)
    total_payout = sum(s.payout for s in shares)
    legs = [Leg(s.account_id, s.payout, s.bet_id) for s in shares if s.payout]
    if total_stake:
        legs.append(Leg(escrow.id, -total_stake))
    if total_stake != total_payout:
        legs.append(Leg(house.id, total_stake - total_payout))
    if not legs:
        return None
    return Transfer(EntryKind.PAYOUT, escrow.currency, tuple(legs), round_id, table_id)


def refund(
    escrow: Account, shares: Sequence[BetShare], round_id: str, table_id: str
) -> Transfer | None:
    """A voided round: every stake back to its player in full. ``None`` without bets."""
    if not shares:
        return None
    legs = [Leg(s.account_id, s.stake, s.bet_id) for s in shares]
    legs.append(Leg(escrow.id, -sum(s.stake for s in shares)))
    return Transfer(EntryKind.REFUND, escrow.currency, tuple(legs), round_id, table_id)


def post(transfer: Transfer, accounts: Mapping[int, Account]) -> list[int]:
    """Apply ``transfer`` to ``accounts``; return each leg's balance right after it.

    All or nothing: a player or escrow account that would go below zero raises
    INSUFFICIENT_FUNDS (FAILED_PRECONDITION) and no balance changes.
    """
    pending: dict[int, int] = {}
    after: list[int] = []
    for leg in transfer.legs:
        account = accounts[leg.account_id]
        if account.currency != transfer.currency:
            raise UnbalancedTransfer(f"leg on {account.currency} account in {transfer.currency}")
        balance = pending.get(leg.account_id, account.balance) + leg.amount
        if balance < 0 and account.kind in MUST_COVER:
            raise insufficient_funds(account, -leg.amount)
        if not -MAX_BALANCE <= balance <= MAX_BALANCE:
            raise FailedPrecondition(
                "BALANCE_OVERFLOW",
                "the balance would leave the supported range",
                metadata={"account_id": str(account.id)},
            )
        pending[leg.account_id] = balance
        after.append(balance)
    for account_id, balance in pending.items():
        accounts[account_id].balance = balance
    return after
