"""Read-only views of the ledger: balances, statements, limits, and reconciliation.

Reads go straight to the database (an OK answer means committed, so a read after it sees the
effect); none of them takes a lock. Reconciliation reads the whole ledger in one snapshot and
recomputes every balance from the postings, so it catches what the write path might break.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wallet_svc import ledger
from wallet_svc.commands import KycStatus
from wallet_svc.limits import PERIODS, Block, BlockKind, Limit, LimitKind, Period, Usage, Window
from wallet_svc.refusals import account_not_found
from wallet_svc.state import RoundState
from wallet_svc.store import Store
from wallet_svc.tables import accounts, money_limits, players, postings, rounds

US_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    balance: int
    in_play: int
    kyc: KycStatus


async def balance(store: Store, player_id: str, currency: str) -> Balance:
    key = ledger.player_key(player_id, currency)
    async with store.snapshot() as conn:
        row = (
            await conn.execute(
                select(accounts.c.balance, accounts.c.in_play, players.c.kyc_status)
                .join(players, players.c.player_id == accounts.c.player_id)
                .where(accounts.c.key == key)
            )
        ).first()
    if row is None:
        raise account_not_found(player_id, currency)
    return Balance(currency, row.balance, row.in_play, KycStatus(row.kyc_status))


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    kind: str
    amount: int
    balance_after: int
    round_id: str
    bet_id: str
    table_id: str
    external_ref: str
    created_us: int


async def statement(
    store: Store,
    player_id: str,
    currency: str,
    *,
    start_us: int | None,
    end_us: int | None,
    page_size: int,
    before_id: int | None,
) -> tuple[int, list[Entry], bool]:
    """The account id, a page of its postings newest first, and whether more follow."""
    key = ledger.player_key(player_id, currency)
    async with store.snapshot() as conn:
        account_id = await conn.scalar(select(accounts.c.id).where(accounts.c.key == key))
        if account_id is None:
            raise account_not_found(player_id, currency)
        query = select(postings).where(postings.c.account_id == account_id)
        if before_id is not None:
            query = query.where(postings.c.id < before_id)
        if start_us is not None:
            query = query.where(postings.c.created_us >= start_us)
        if end_us is not None:
            query = query.where(postings.c.created_us < end_us)
        query = query.order_by(postings.c.id.desc()).limit(page_size + 1)
        rows = (await conn.execute(query)).all()
    entries = [
        Entry(
            r.id,
            r.kind,
            r.amount,
            r.balance_after,
            r.round_id or "",
            r.bet_id or "",
            r.table_id or "",
            r.external_ref or "",
            r.created_us,
        )
        for r in rows[:page_size]
    ]
    return account_id, entries, len(rows) > page_size


@dataclass(frozen=True, slots=True)
class LimitView:
    """A limit in force, its use in the current period, and any pending change."""

    limit: Limit
    used: int
    period_ends_us: int
    pending: Limit | None


async def limits(
    store: Store, player_id: str, currency: str, now_us: int, window: Window
) -> tuple[list[LimitView], Block | None]:
    key = ledger.player_key(player_id, currency)
    async with store.snapshot() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.key == key))).first()
        if row is None:
            raise account_not_found(player_id, currency)
        player = (
            await conn.execute(select(players).where(players.c.player_id == row.player_id))
        ).one()
        stored = (
            await conn.execute(select(money_limits).where(money_limits.c.account_id == row.id))
        ).all()
    usage = Usage(
        [getattr(row, f"{p.value}_start_us") for p in PERIODS],
        [getattr(row, f"{p.value}_deposits") for p in PERIODS],
        [getattr(row, f"{p.value}_loss") for p in PERIODS],
    )
    usage.roll(window)
    views = []
    for item in stored:
        limit = Limit(
            LimitKind(item.kind),
            Period(item.period),
            item.amount,
            item.pending,
            item.pending_amount,
            item.pending_at_us,
        )
        in_force = limit.in_force(now_us)
        if in_force.amount is None and not in_force.pending:
            continue
        views.append(
            LimitView(
                Limit(in_force.kind, in_force.period, in_force.amount),
                usage.used(in_force.kind, in_force.period),
                window.end_of(in_force.period),
                in_force if in_force.pending else None,
            )
        )
    block = None
    if player.block_kind is not None:
        block = Block(BlockKind(player.block_kind), player.block_starts_us, player.block_ends_us)
        if not block.active(now_us):
            block = None
    return views, block


@dataclass
class DayTotals:
    day_start_us: int
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sums: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rounds_settled: int = 0
    rounds_refunded: int = 0


@dataclass
class CurrencyReport:
    """One currency's reconciliation; ``ok`` when every check passed."""

    currency: str
    total_deposits: int = 0
    total_withdrawals: int = 0
    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    postings_sum: int = 0
    unbalanced_transfers: int = 0
    drifted_accounts: int = 0
    open_round_count: int = 0
    open_round_held: int = 0
    players_in_play: int = 0
    closed_rounds_with_escrow: list[str] = field(default_factory=list)
    negative_balance_accounts: list[str] = field(default_factory=list)
    days: dict[int, DayTotals] = field(default_factory=dict)

    @property
    def conservation_ok(self) -> bool:
        players_escrow_house = sum(
            self.balances[k.value]
            for k in (
                ledger.AccountKind.PLAYER,
                ledger.AccountKind.ESCROW,
                ledger.AccountKind.HOUSE,
            )
        )
        return (
            self.postings_sum == 0
            and self.unbalanced_transfers == 0
            and self.drifted_accounts == 0
            and sum(self.balances.values()) == 0
            and players_escrow_house == self.total_deposits - self.total_withdrawals
            and self.balances[ledger.AccountKind.ESCROW.value] == self.open_round_held
            and self.players_in_play == self.open_round_held
        )

    @property
    def ok(self) -> bool:
        return (
            self.conservation_ok
            and not self.closed_rounds_with_escrow
            and not self.negative_balance_accounts
        )


async def reconcile(
    store: Store, currency: str | None, start_us: int, end_us: int
) -> list[CurrencyReport]:
    """Check the whole ledger in one snapshot; per-day totals for [start_us, end_us)."""
    reports: dict[str, CurrencyReport] = {}

    def report(code: str) -> CurrencyReport:
        if code not in reports:
            reports[code] = CurrencyReport(code)
        return reports[code]

    def only(column: Any) -> ColumnElement[bool]:
        """The currency filter: the one asked for, or every (non-empty) currency."""
        return column == currency if currency else column.is_not(None)  # type: ignore[no-any-return]

    posted = (
        select(
            postings.c.account_id,
            func.sum(postings.c.amount).label("total"),
        )
        .group_by(postings.c.account_id)
        .subquery()
    )
    async with store.snapshot() as conn:
        for row in await _rows(
            conn,
            select(
                accounts.c.currency,
                accounts.c.kind,
                func.sum(accounts.c.balance),
                func.sum(accounts.c.in_play),
            )
            .where(only(accounts.c.currency))
            .group_by(accounts.c.currency, accounts.c.kind),
        ):
            report(row[0]).balances[row[1]] = int(row[2])
            if row[1] == ledger.AccountKind.PLAYER.value:
                report(row[0]).players_in_play = int(row[3])
        for row in await _rows(
            conn,
            select(accounts.c.currency, func.count())
            .select_from(accounts.outerjoin(posted, posted.c.account_id == accounts.c.id))
            .where(only(accounts.c.currency))
            .where(accounts.c.balance != func.coalesce(posted.c.total, 0))
            .group_by(accounts.c.currency),
        ):
            report(row[0]).drifted_accounts = int(row[1])
        for row in await _rows(
            conn,
            select(accounts.c.currency, accounts.c.id).where(
                only(accounts.c.currency),
                accounts.c.kind == ledger.AccountKind.PLAYER.value,
                accounts.c.balance < 0,
            ),
        ):
            report(row[0]).negative_balance_accounts.append(str(row[1]))
        joined = postings.join(accounts, accounts.c.id == postings.c.account_id)
        for row in await _rows(
            conn,
            select(accounts.c.currency, func.sum(postings.c.amount))
            .select_from(joined)
            .where(only(accounts.c.currency))
            .group_by(accounts.c.currency),
        ):
            report(row[0]).postings_sum = int(row[1])
        unbalanced = (
            select(accounts.c.currency, postings.c.transfer_id)
            .select_from(joined)
            .where(only(accounts.c.currency))
            .group_by(accounts.c.currency, postings.c.transfer_id)
            .having(func.sum(postings.c.amount) != 0)
            .subquery()
        )
        for row in await _rows(
            conn, select(unbalanced.c.currency, func.count()).group_by(unbalanced.c.currency)
        ):
            report(row[0]).unbalanced_transfers = int(row[1])
        player_legs = and_(
            only(accounts.c.currency), accounts.c.kind == ledger.AccountKind.PLAYER.value
        )
        for row in await _rows(
            conn,
            select(accounts.c.currency, postings.c.kind, func.sum(postings.c.amount))
            .select_from(joined)
            .where(player_legs, postings.c.kind.in_(["deposit", "withdrawal"]))
            .group_by(accounts.c.currency, postings.c.kind),
        ):
            if row[1] == "deposit":
                report(row[0]).total_deposits = int(row[2])
            else:
                report(row[0]).total_withdrawals = -int(row[2])
        for row in await _rows(
            conn,
            select(rounds.c.currency, func.count(), func.sum(rounds.c.held))
            .where(only(rounds.c.currency), rounds.c.state == RoundState.OPEN.value)
            .group_by(rounds.c.currency),
        ):
            report(row[0]).open_round_count = int(row[1])
            report(row[0]).open_round_held = int(row[2])
        escrow = (
            select(postings.c.round_id, func.sum(postings.c.amount).label("held"))
            .select_from(joined)
            .where(accounts.c.kind == ledger.AccountKind.ESCROW.value)
            .group_by(postings.c.round_id)
            .subquery()
        )
        for row in await _rows(
            conn,
            select(rounds.c.currency, rounds.c.round_id)
            .select_from(rounds.outerjoin(escrow, escrow.c.round_id == rounds.c.round_id))
            .where(only(rounds.c.currency), rounds.c.state != RoundState.OPEN.value)
            .where((rounds.c.held != 0) | (func.coalesce(escrow.c.held, 0) != 0)),
        ):
            report(row[0]).closed_rounds_with_escrow.append(row[1])
        day = postings.c.created_us // US_PER_DAY
        for row in await _rows(
            conn,
            select(
                accounts.c.currency, day, postings.c.kind, func.count(), func.sum(postings.c.amount)
            )
            .select_from(joined)
            .where(player_legs, postings.c.created_us >= start_us, postings.c.created_us < end_us)
            .group_by(accounts.c.currency, day, postings.c.kind),
        ):
            totals = _day(report(row[0]), int(row[1]))
            totals.counts[row[2]] += int(row[3])
            totals.sums[row[2]] += abs(int(row[4]))
        closed_day = rounds.c.closed_us // US_PER_DAY
        for row in await _rows(
            conn,
            select(rounds.c.currency, closed_day, rounds.c.state, func.count())
            .where(only(rounds.c.currency), rounds.c.state != RoundState.OPEN.value)
            .where(rounds.c.closed_us >= start_us, rounds.c.closed_us < end_us)
            .group_by(rounds.c.currency, closed_day, rounds.c.state),
        ):
            totals = _day(report(row[0]), int(row[1]))
            if row[2] == RoundState.SETTLED.value:
                totals.rounds_settled += int(row[3])
            else:
                totals.rounds_refunded += int(row[3])
    return [reports[code] for code in sorted(reports)]


async def _rows(conn: AsyncConnection, query: Any) -> list[Any]:
    return list((await conn.execute(query)).all())


def _day(report: CurrencyReport, day: int) -> DayTotals:
    if day not in report.days:
        report.days[day] = DayTotals(day * US_PER_DAY)
    return report.days[day]
