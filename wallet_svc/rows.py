"""Between database rows and the batch state: column orders, and tuples in those orders.

Writes go as tuples (PostgreSQL gets one array per column, SQLite an executemany), so each
``*_COLUMNS`` tuple and its function must list the same columns in the same order.
"""

from __future__ import annotations

from typing import Any

from wallet_svc.commands import KycStatus
from wallet_svc.idempotency import Answer, Stored
from wallet_svc.ledger import Account, AccountKind
from wallet_svc.limits import PERIODS, Block, BlockKind, Limit, LimitKind, Period, Usage, Window
from wallet_svc.state import (
    AccountRow,
    AuditRow,
    BetRow,
    BetState,
    PlayerRow,
    PostingRow,
    RoundRow,
    RoundState,
    State,
)

PLAYER = (
    "player_id",
    "kyc_status",
    "kyc_updated_us",
    "block_kind",
    "block_starts_us",
    "block_ends_us",
    "created_us",
)


def player(p: PlayerRow) -> tuple[Any, ...]:
    block = p.block
    if block is None:
        return (p.player_id, p.kyc.value, p.kyc_updated_us, None, None, None, p.created_us)
    return (
        p.player_id,
        p.kyc.value,
        p.kyc_updated_us,
        block.kind.value,
        block.starts_us,
        block.ends_us,
        p.created_us,
    )


def player_from(row: Any) -> PlayerRow:
    """From a full ``players`` row, by position."""
    player_id, kyc, kyc_updated_us, block_kind, block_starts_us, block_ends_us, created_us = row
    block = None
    if block_kind is not None:
        block = Block(BlockKind(block_kind), block_starts_us, block_ends_us)
    return PlayerRow(player_id, KYC[kyc], kyc_updated_us, block, created_us)


USAGE = (
    "id",
    "balance",
    "in_play",
    *(f"{p.value}_start_us" for p in PERIODS),
    *(f"{p.value}_deposits" for p in PERIODS),
    *(f"{p.value}_loss" for p in PERIODS),
)
ACCOUNT = (*USAGE, "key", "kind", "currency", "owner", "player_id", "created_us")


def usage(row: AccountRow) -> tuple[Any, ...]:
    u = row.usage
    return (
        row.account.id,
        row.account.balance,
        row.in_play,
        *u.starts,
        *u.deposits,
        *u.loss,
    )


def account(row: AccountRow) -> tuple[Any, ...]:
    a = row.account
    return (*usage(row), row.key, a.kind.value, a.currency, a.owner, row.player_id, row.created_us)


def account_from(row: Any, window: Window) -> AccountRow:
    """From a full ``accounts`` row, by position (in the table's column order)."""
    id_, key, kind, currency, owner, player_id, balance, in_play = row[:8]
    counters = Usage(list(row[8:11]), list(row[11:14]), list(row[14:17]))
    counters.roll(window)
    ledger_account = Account(id_, KINDS[kind], currency, owner, balance)
    return AccountRow(ledger_account, key, player_id, counters, row[17], in_play)


KINDS = {kind.value: kind for kind in AccountKind}
KYC = {status.value: status for status in KycStatus}
ROUND_STATES = {state.value: state for state in RoundState}
BET_STATES = {state.value: state for state in BetState}

TABLE = ("table_id", "fencing_token")

ROUND = (
    "round_id",
    "table_id",
    "currency",
    "state",
    "escrow_account_id",
    "stake_count",
    "total_stake",
    "held",
    "created_us",
    "closed_us",
    "close_reason",
)


def round_(r: RoundRow) -> tuple[Any, ...]:
    return (
        r.round_id,
        r.table_id,
        r.currency,
        r.state.value,
        r.escrow_account_id,
        r.stake_count,
        r.total_stake,
        r.held,
        r.created_us,
        r.closed_us,
        r.close_reason,
    )


def round_from(row: Any) -> RoundRow:
    """From a full ``rounds`` row, by position."""
    return RoundRow(
        row[0],
        row[1],
        row[2],
        ROUND_STATES[row[3]],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
    )


BET = (
    "bet_id",
    "round_id",
    "account_id",
    "player_id",
    "currency",
    "amount",
    "balance_after",
    "state",
    "created_us",
    "payout",
    "closed_us",
)
BET_CLOSE = ("bet_id", "state", "payout", "closed_us")


def bet(b: BetRow) -> tuple[Any, ...]:
    return (
        b.bet_id,
        b.round_id,
        b.account_id,
        b.player_id,
        b.currency,
        b.amount,
        b.balance_after,
        b.state.value,
        b.created_us,
        b.payout,
        b.closed_us,
    )


def bet_close(b: BetRow) -> tuple[Any, ...]:
    return (b.bet_id, b.state.value, b.payout, b.closed_us)


def bet_from(row: Any) -> BetRow:
    """From a full ``bets`` row, by position (its payout column comes before created_us)."""
    bet_id, round_id, account_id, player_id, currency, amount, after, state = row[:8]
    payout, created_us, closed_us = row[8:11]
    return BetRow(
        bet_id,
        round_id,
        account_id,
        player_id,
        currency,
        amount,
        after,
        BET_STATES[state],
        created_us,
        payout,
        closed_us,
    )


POSTING = PostingRow._fields
AUDIT = AuditRow._fields

LIMIT = ("account_id", "kind", "period", "amount", "pending", "pending_amount", "pending_at_us")


def limit(state: State, key: tuple[int, LimitKind, Period]) -> tuple[Any, ...]:
    account_id, kind, period = key
    found = state.limits[account_id][(kind, period)]
    return (
        account_id,
        kind.value,
        period.value,
        found.amount,
        found.pending,
        found.pending_amount,
        found.pending_at_us,
    )


def limit_from(row: Any) -> tuple[int, Limit]:
    """From a full ``money_limits`` row, by position: its account id and the limit."""
    account_id, kind, period, amount, pending, pending_amount, pending_at_us = row
    return account_id, Limit(
        LimitKind(kind), Period(period), amount, pending, pending_amount, pending_at_us
    )


STORED = ("method", "key", "fingerprint", "ok", "answer", "created_us")


def stored_from(row: Any) -> Stored:
    """From a full ``idempotency`` row, by position."""
    method, key, fingerprint, ok, answer = row[:5]
    return Stored(method, key, bytes(fingerprint), Answer(ok, bytes(answer)))


def stored(s: Stored, now_us: int) -> tuple[Any, ...]:
    return (s.method, s.key, s.fingerprint, s.answer.ok, s.answer.body, now_us)
