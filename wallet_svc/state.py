"""The rows one batch works on, loaded (and locked) by the store, changed by the engine.

The state remembers what is new and what changed, so the store writes back exactly that in
the batch's one transaction. Postings, audit records and idempotency records are append-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from wallet_svc.commands import KycStatus
from wallet_svc.idempotency import Stored
from wallet_svc.ledger import Account
from wallet_svc.limits import Block, Limit, LimitKind, Period, Usage


class RoundState(StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    REFUNDED = "refunded"


class BetState(StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    REFUNDED = "refunded"


@dataclass(slots=True)
class PlayerRow:
    player_id: str
    kyc: KycStatus
    kyc_updated_us: int
    block: Block | None
    created_us: int


@dataclass(slots=True)
class AccountRow:
    account: Account
    key: str
    player_id: str | None
    usage: Usage
    created_us: int
    in_play: int = 0
    """The player's stakes in rounds not yet settled or refunded."""


@dataclass(slots=True)
class TableRow:
    table_id: str
    fencing_token: int


@dataclass(slots=True)
class RoundRow:
    round_id: str
    table_id: str
    currency: str | None
    state: RoundState
    escrow_account_id: int | None
    stake_count: int
    total_stake: int
    held: int
    """The round's money still in escrow: stakes in, settlement or refund out."""
    created_us: int
    closed_us: int | None = None
    close_reason: str | None = None


@dataclass(slots=True)
class BetRow:
    bet_id: str
    round_id: str
    account_id: int
    player_id: str
    currency: str
    amount: int
    balance_after: int
    state: BetState
    created_us: int
    payout: int | None = None
    closed_us: int | None = None


class PostingRow(NamedTuple):
    """One leg of a transfer, as stored (the field order is the column order)."""

    id: int
    transfer_id: int
    account_id: int
    kind: str
    amount: int
    balance_after: int
    round_id: str | None
    bet_id: str | None
    table_id: str | None
    external_ref: str | None
    created_us: int


class AuditRow(NamedTuple):
    """A KYC, limit or block change, as stored (the field order is the column order)."""

    id: int
    player_id: str
    account_id: int | None
    action: str
    operator_id: str
    reason: str
    detail: str
    created_us: int


LimitKey = tuple[int, LimitKind, Period]


@dataclass
class State:
    """Everything a batch read, plus its changes."""

    players: dict[str, PlayerRow] = field(default_factory=dict)
    accounts: dict[int, AccountRow] = field(default_factory=dict)
    account_ids: dict[str, int] = field(default_factory=dict)
    """Account key -> id, for the accounts loaded or created."""
    tables: dict[str, TableRow] = field(default_factory=dict)
    rounds: dict[str, RoundRow] = field(default_factory=dict)
    bets: dict[str, BetRow] = field(default_factory=dict)
    round_bets: dict[str, list[BetRow]] = field(default_factory=dict)
    """All bets of the rounds a settlement or refund needs (loaded with every bet)."""
    limits: dict[int, dict[tuple[LimitKind, Period], Limit]] = field(default_factory=dict)
    """Per account id: its limits. Present (maybe empty) for every account whose limits loaded."""

    new: set[tuple[str, object]] = field(default_factory=set)
    dirty: set[tuple[str, object]] = field(default_factory=set)
    postings: list[PostingRow] = field(default_factory=list)
    audits: list[AuditRow] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)
    version: int = 0
    """Bumped on every change: the engine checks that a refused operation changed nothing."""

    # --- lookups --------------------------------------------------------------------------
    def account_by_key(self, key: str) -> AccountRow | None:
        account_id = self.account_ids.get(key)
        return None if account_id is None else self.accounts[account_id]

    def ledger_accounts(self) -> dict[int, Account]:
        return {i: row.account for i, row in self.accounts.items()}

    # --- loading (store) ------------------------------------------------------------------
    def load_account(self, row: AccountRow) -> None:
        self.accounts[row.account.id] = row
        self.account_ids[row.key] = row.account.id

    # --- changes (engine) -----------------------------------------------------------------
    def touch(self, kind: str, key: object) -> None:
        """Mark a loaded row changed."""
        self.version += 1
        if (kind, key) not in self.new:
            self.dirty.add((kind, key))

    def add(self, kind: str, key: object) -> None:
        """Mark a row created in this batch."""
        self.version += 1
        self.new.add((kind, key))

    def add_account(self, row: AccountRow) -> None:
        self.load_account(row)
        self.add("account", row.account.id)

    def add_posting(self, row: PostingRow) -> None:
        self.version += 1
        self.postings.append(row)

    def add_audit(self, row: AuditRow) -> None:
        self.version += 1
        self.audits.append(row)

    def changed(self, kind: str) -> tuple[list[Any], list[Any]]:
        """The keys of ``kind`` rows to insert and to update."""
        inserts = [key for k, key in self.new if k == kind]
        updates = [key for k, key in self.dirty if k == kind]
        return inserts, updates
