"""The ledger's storage adapter: load and lock what a batch needs, write back what it changed.

A batch costs a fixed number of statements whatever its size. On PostgreSQL it is one
statement that reads and locks (``FOR UPDATE``, in id order, on the rows money moves through:
accounts, rounds, tables) and one that writes (see ``pgbatch``), then COMMIT. On SQLite, the
embedded default, the writer takes the database's one write lock with ``BEGIN IMMEDIATE`` and
reads with one ``IN`` query per table, writes with one executemany per table. Read-only reports
run in one snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    event,
    or_,
    select,
)
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casino_kit.sql import migrate
from wallet_svc import ledger, pgbatch, rows
from wallet_svc.commands import (
    Command,
    Deposit,
    OpenAccount,
    PlaceStakes,
    RefundRound,
    SetBlock,
    SetKyc,
    SetLimits,
    SettleRound,
    Withdraw,
)
from wallet_svc.idempotency import Stored
from wallet_svc.limits import Window
from wallet_svc.state import (
    State,
    TableRow,
)
from wallet_svc.tables import (
    accounts,
    audit,
    bets,
    game_tables,
    idempotency,
    money_limits,
    players,
    postings,
    rounds,
)


def _session_settings(engine: AsyncEngine) -> None:
    """Settings for short OLTP statements with large key arrays.

    Plan each statement for its own arguments: a generic plan made while the ledger was small
    (a fresh database, before autovacuum's first ANALYZE) scans whole tables for a
    ``key = ANY(keys)`` lookup, and the driver caches that plan. And no JIT: a batch's
    statement with hundreds of keys looks expensive to the planner, and compiling it costs
    ten times more than running it.
    """

    async def _apply(connection: Any) -> None:
        await connection.execute("SET plan_cache_mode = force_custom_plan; SET jit = off")

    @event.listens_for(engine.sync_engine, "connect")
    def _set(dbapi_connection: Any, _: Any) -> None:
        # Straight on the driver: through a cursor the SETs would run in a transaction that
        # the pool rolls back, and be undone with it.
        dbapi_connection.run_async(_apply)


def _pg(connection: AsyncConnection) -> Any:
    """The asyncpg connection under a write connection (PostgreSQL)."""
    return connection.info["asyncpg"]


async def _discard(connection: AsyncConnection) -> None:
    """Close a writer connection for good, never back to the pool: it may be broken, or still
    inside the transaction ``writing`` began by hand."""
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


def _sqlite_begin(engine: AsyncEngine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, say BEGIN: reads get one snapshot per
    transaction, and writers take the write lock at once (``BEGIN IMMEDIATE``)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: SyncConnection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


class Store:
    """Storage of one wallet process; ``engine`` from ``casino_kit.sql.create_engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writers: list[AsyncConnection] = []
        """Open write connections not running a batch now."""
        self.postgres = engine.dialect.name == "postgresql"
        if self.postgres:
            _session_settings(engine)
        else:
            _sqlite_begin(engine)

    async def migrate(self) -> None:
        await migrate(self.engine, "wallet_svc")

    async def close(self) -> None:
        while self._writers:
            await _discard(self._writers.pop())
        await self.engine.dispose()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction, committed when the block ends without error.

        Write connections are kept open and reused (a pool checkout would cost a liveness
        round trip per batch), one per batch running at once. After any failure the
        connection is dropped (which rolls its transaction back) and a later batch opens a
        fresh one. On PostgreSQL a write connection always has a transaction open: a batch
        commits and begins the next transaction in one round trip, so BEGIN is off the
        batch's path, and its statements run on the asyncpg connection straight (see
        ``pgbatch``).
        """
        connection = self._writers.pop() if self._writers else await self._open_writer()
        try:
            if self.postgres:
                yield connection
                await _pg(connection).execute("COMMIT; BEGIN")
            else:
                async with connection.begin():
                    yield connection
        except BaseException:
            await _discard(connection)
            raise
        self._writers.append(connection)

    async def _open_writer(self) -> AsyncConnection:
        connection = await self.engine.connect()
        if self.postgres:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None, "an open connection has its asyncpg connection"
            connection.info["asyncpg"] = driver
            await driver.execute("BEGIN")
        else:
            await connection.execution_options(sqlite_begin="IMMEDIATE")
        return connection

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """One read-only transaction that sees a single consistent state of the ledger."""
        async with self.engine.connect() as connection:
            if self.postgres:
                await connection.execution_options(isolation_level="REPEATABLE READ")
            async with connection.begin():
                yield connection

    # --- helpers (SQLite) ------------------------------------------------------------------
    async def _insert(
        self,
        conn: AsyncConnection,
        table: Table,
        names: Sequence[str],
        values: list[tuple[Any, ...]],
    ) -> None:
        if values:
            await conn.execute(
                table.insert(), [dict(zip(names, row, strict=True)) for row in values]
            )

    async def _update(
        self,
        conn: AsyncConnection,
        table: Table,
        keys: Sequence[str],
        names: Sequence[str],
        values: list[tuple[Any, ...]],
    ) -> None:
        if not values:
            return
        statement = (
            table.update()
            .where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
            .values({n: bindparam(f"v_{n}") for n in names if n not in keys})
        )
        many = [
            {(f"k_{n}" if n in keys else f"v_{n}"): v for n, v in zip(names, row, strict=True)}
            for row in values
        ]
        await conn.execute(statement, many)

    # --- a batch ----------------------------------------------------------------------------
    async def load(
        self,
        conn: AsyncConnection,
        keys: Sequence[str],
        commands: Sequence[Command],
        window: Window,
    ) -> tuple[dict[tuple[str, str], Stored], State]:
        """The stored answers of ``keys``, and every row ``commands`` may read or change
        (locked on PostgreSQL; SQLite's writer holds the whole database)."""
        needs = Needs(commands)
        if self.postgres:
            return await pgbatch.load(_pg(conn), keys, needs, window)
        stored: dict[tuple[str, str], Stored] = {}
        if keys:
            query = select(idempotency).where(idempotency.c.key.in_(set(keys)))
            for row in await conn.execute(query):
                found = rows.stored_from(row)
                stored[(found.method, found.key)] = found
        return stored, await self._load_sqlite(conn, needs, window)

    async def _load_sqlite(self, conn: AsyncConnection, needs: Needs, window: Window) -> State:
        state = State()
        if needs.tables:
            query = select(game_tables).where(game_tables.c.table_id.in_(needs.tables))
            for row in await conn.execute(query):
                state.tables[row[0]] = TableRow(row[0], row[1])
        if needs.rounds:
            for row in await conn.execute(
                select(rounds).where(rounds.c.round_id.in_(needs.rounds))
            ):
                state.rounds[row[0]] = rows.round_from(row)
        for round_id in needs.closing:
            state.round_bets[round_id] = []
        if needs.bets or needs.closing:
            query = select(bets).where(
                or_(bets.c.bet_id.in_(needs.bets), bets.c.round_id.in_(needs.closing))
            )
            for row in await conn.execute(query):
                bet = rows.bet_from(row)
                state.bets[bet.bet_id] = bet
                if bet.round_id in state.round_bets:
                    state.round_bets[bet.round_id].append(bet)
        account_ids = {b.account_id for b in state.bets.values()}
        account_ids |= {r.escrow_account_id for r in state.rounds.values() if r.escrow_account_id}
        if needs.accounts or account_ids:
            query = select(accounts).where(
                or_(accounts.c.key.in_(needs.accounts), accounts.c.id.in_(account_ids))
            )
            for row in await conn.execute(query):
                state.load_account(rows.account_from(row, window))
        owners = {a.player_id for a in state.accounts.values() if a.player_id is not None}
        if needs.players or owners:
            query = select(players).where(players.c.player_id.in_(needs.players | owners))
            for row in await conn.execute(query):
                state.players[row[0]] = rows.player_from(row)
        limited = [i for i, a in state.accounts.items() if a.player_id is not None]
        if limited:
            for account_id in limited:
                state.limits[account_id] = {}
            query = select(money_limits).where(money_limits.c.account_id.in_(limited))
            for row in await conn.execute(query):
                account_id, limit = rows.limit_from(row)
                state.limits[account_id][(limit.kind, limit.period)] = limit
        return state

    async def write(self, conn: AsyncConnection, state: State, now_us: int) -> None:
        """Write back everything the batch created or changed, parents first."""
        if self.postgres:
            await pgbatch.write(_pg(conn), state, now_us)
            return
        new, changed = state.changed("player")
        await self._insert(conn, players, rows.PLAYER, [rows.player(state.players[k]) for k in new])
        await self._update(
            conn,
            players,
            ["player_id"],
            rows.PLAYER,
            [rows.player(state.players[k]) for k in changed],
        )
        new, changed = state.changed("account")
        await self._insert(
            conn, accounts, rows.ACCOUNT, [rows.account(state.accounts[k]) for k in new]
        )
        await self._update(
            conn, accounts, ["id"], rows.USAGE, [rows.usage(state.accounts[k]) for k in changed]
        )
        new, changed = state.changed("table")
        table_rows = {k: (k, state.tables[k].fencing_token) for k in new + changed}
        await self._insert(conn, game_tables, rows.TABLE, [table_rows[k] for k in new])
        await self._update(
            conn, game_tables, ["table_id"], rows.TABLE, [table_rows[k] for k in changed]
        )
        new, changed = state.changed("round")
        await self._insert(conn, rounds, rows.ROUND, [rows.round_(state.rounds[k]) for k in new])
        await self._update(
            conn, rounds, ["round_id"], rows.ROUND, [rows.round_(state.rounds[k]) for k in changed]
        )
        new, changed = state.changed("bet")
        await self._insert(conn, bets, rows.BET, [rows.bet(state.bets[k]) for k in new])
        await self._update(
            conn, bets, ["bet_id"], rows.BET_CLOSE, [rows.bet_close(state.bets[k]) for k in changed]
        )
        await self._insert(conn, postings, rows.POSTING, state.postings)  # type: ignore[arg-type]
        new, changed = state.changed("limit")
        await self._insert(conn, money_limits, rows.LIMIT, [rows.limit(state, k) for k in new])
        await self._update(
            conn,
            money_limits,
            ["account_id", "kind", "period"],
            rows.LIMIT,
            [rows.limit(state, k) for k in changed],
        )
        await self._insert(conn, audit, rows.AUDIT, state.audits)  # type: ignore[arg-type]
        await self._insert(
            conn, idempotency, rows.STORED, [rows.stored(s, now_us) for s in state.stored]
        )


class Needs:
    """The keys a batch's commands will look up, gathered before the first query."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.tables: set[str] = set()
        self.rounds: set[str] = set()
        self.closing: set[str] = set()
        self.bets: set[str] = set()
        self.players: set[str] = set()
        """Players to load beside the owners of the loaded accounts (who always load, with
        their accounts' limits)."""
        self.accounts: set[str] = set()
        for command in commands:
            self._add(command)

    def _add(self, command: Command) -> None:
        if isinstance(command, OpenAccount):
            self.players.add(command.player_id)
            self.accounts.add(ledger.player_key(command.player_id, command.currency))
        elif isinstance(command, Deposit | Withdraw):
            self.accounts.add(ledger.player_key(command.player_id, command.currency))
            self.accounts.add(ledger.cashier_key(command.currency, command.player_id))
        elif isinstance(command, PlaceStakes):
            self.tables.add(command.table_id)
            self.rounds.add(command.round_id)
            self.accounts.add(ledger.escrow_key(command.table_id, command.currency))
            for stake in command.stakes:
                self.bets.add(stake.bet_id)
                self.accounts.add(ledger.player_key(stake.player_id, command.currency))
        elif isinstance(command, SettleRound | RefundRound):
            self.tables.add(command.table_id)
            self.rounds.add(command.round_id)
            self.closing.add(command.round_id)
            if isinstance(command, SettleRound) and command.currency:
                # A settlement with payouts names the round's currency, or fails before
                # it needs the house; one without payouts has no bet to settle.
                self.accounts.add(ledger.house_key(command.currency, command.round_id))
        elif isinstance(command, SetKyc | SetBlock):
            self.players.add(command.player_id)
        elif isinstance(command, SetLimits):
            self.accounts.add(ledger.player_key(command.player_id, command.currency))
