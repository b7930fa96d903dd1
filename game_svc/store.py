"""SQL storage of tables, their event log, rounds and idempotent answers (PostgreSQL or SQLite).

The event log is the source of truth for ``GameService.Subscribe``: each table's events
carry a sequence that starts at 1 and grows by exactly one. ``append`` takes the next
sequence by incrementing the table row's ``last_sequence`` in the same transaction as the
insert, so a failed append leaves no gap and concurrent appends are serialised by the
row lock. Times are stored as Unix epoch microseconds, the same on both engines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casino.common.v1 import table_event_pb2
from casino.game.v1 import game_pb2
from game_svc.rounds import Phase

metadata = MetaData()

tables = Table(
    "game_tables",
    metadata,
    Column("table_id", String(64), primary_key=True),
    Column("config", LargeBinary, nullable=False),
    Column("status", Integer, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("last_sequence", BigInteger, nullable=False),
)
events = Table(
    "game_table_events",
    metadata,
    Column("table_id", String(64), ForeignKey("game_tables.table_id"), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("round_id", String(64), nullable=False),
    Column("server_time_us", BigInteger, nullable=False),
    Column("event", LargeBinary, nullable=False),
)
rounds = Table(
    "game_rounds",
    metadata,
    Column("round_id", String(64), primary_key=True),
    Column("table_id", String(64), ForeignKey("game_tables.table_id"), nullable=False),
    Column("phase", Integer, nullable=False),
    Column("opened_at_us", BigInteger, nullable=False),
    Column("closes_at_us", BigInteger, nullable=False),
    Column("closed_at_us", BigInteger, nullable=True),
    Index("game_rounds_by_table", "table_id", "opened_at_us"),
)
idempotency = Table(
    "game_idempotency",
    metadata,
    Column("operation", String(64), primary_key=True),
    Column("idempotency_key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("response", LargeBinary, nullable=False),
)


def to_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


class TableMissing(LookupError):
    """No table with that id."""


@dataclass(frozen=True)
class TableRow:
    table_id: str
    config: game_pb2.TableConfig
    status: int
    created_at: datetime
    last_sequence: int


@dataclass(frozen=True)
class RoundRow:
    round_id: str
    table_id: str
    phase: Phase
    opened_at: datetime
    closes_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class Remembered:
    """A stored idempotent answer: the request's hash and the response bytes."""

    request_hash: str
    response: bytes


@dataclass(frozen=True)
class Answer:
    """How to keep a mutating call's answer: its idempotency key, the request's hash, and
    the response (serialized) built from the event the call logged, if any."""

    operation: str
    key: str
    request_hash: str
    respond: Callable[[table_event_pb2.TableEvent | None], bytes]


class Store:
    """Every query of the game service; each public method is one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_table(
        self,
        table_id: str,
        config: game_pb2.TableConfig,
        status: int,
        created_at: datetime,
        answer: Answer,
    ) -> None:
        """Create a table and keep the call's answer, atomically (IntegrityError on a race)."""
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(tables).values(
                    table_id=table_id,
                    config=config.SerializeToString(deterministic=True),
                    status=status,
                    created_at_us=to_us(created_at),
                    last_sequence=0,
                )
            )
            await self._remember(connection, answer, answer.respond(None))

    async def table(self, table_id: str) -> TableRow:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(select(tables).where(tables.c.table_id == table_id))
            ).first()
        if row is None:
            raise TableMissing(table_id)
        return TableRow(
            row.table_id,
            game_pb2.TableConfig.FromString(row.config),
            row.status,
            from_us(row.created_at_us),
            row.last_sequence,
        )

    async def set_status_and_append(
        self, table_id: str, status: int, event: table_event_pb2.TableEvent, answer: Answer
    ) -> tuple[table_event_pb2.TableEvent | None, bytes]:
        """Change a table's status, log ``event`` and keep the call's answer, in one
        transaction. The event is None (and nothing changed) when the table already had
        that status. IntegrityError when a concurrent call kept an answer for the key."""
        async with self.engine.begin() as connection:
            changed = await connection.execute(
                update(tables)
                .where(tables.c.table_id == table_id, tables.c.status != status)
                .values(status=status)
            )
            stored = None
            if changed.rowcount == 0:
                await self._require_table(connection, table_id)
            else:
                stored = await self._append(connection, event)
            response = answer.respond(stored)
            await self._remember(connection, answer, response)
            return stored, response

    async def append(self, event: table_event_pb2.TableEvent) -> table_event_pb2.TableEvent:
        """Log ``event`` under its table's next sequence; returns it with the sequence set."""
        async with self.engine.begin() as connection:
            return await self._append(connection, event)

    async def _append(
        self, connection: AsyncConnection, event: table_event_pb2.TableEvent
    ) -> table_event_pb2.TableEvent:
        sequence = (
            await connection.execute(
                update(tables)
                .where(tables.c.table_id == event.table_id)
                .values(last_sequence=tables.c.last_sequence + 1)
                .returning(tables.c.last_sequence)
            )
        ).scalar_one_or_none()
        if sequence is None:
            raise TableMissing(event.table_id)
        stored = table_event_pb2.TableEvent()
        stored.CopyFrom(event)
        stored.sequence = sequence
        await connection.execute(
            insert(events).values(
                table_id=stored.table_id,
                sequence=sequence,
                round_id=stored.round_id,
                server_time_us=to_us(stored.server_time.ToDatetime(UTC)),
                event=stored.SerializeToString(deterministic=True),
            )
        )
        return stored

    async def _require_table(self, connection: AsyncConnection, table_id: str) -> None:
        found = await connection.execute(
            select(tables.c.table_id).where(tables.c.table_id == table_id)
        )
        if found.first() is None:
            raise TableMissing(table_id)

    async def events(
        self, table_id: str, from_sequence: int, limit: int, to_sequence: int | None = None
    ) -> list[table_event_pb2.TableEvent]:
        """Stored events from ``from_sequence`` (up to ``to_sequence`` included), in order."""
        query = select(events.c.event).where(
            events.c.table_id == table_id, events.c.sequence >= from_sequence
        )
        if to_sequence is not None:
            query = query.where(events.c.sequence <= to_sequence)
        query = query.order_by(events.c.sequence).limit(limit)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [table_event_pb2.TableEvent.FromString(row.event) for row in rows]

    async def save_round(self, row: RoundRow) -> None:
        """Insert a round or move its phase on (the state machine checked the move)."""
        values = {
            "table_id": row.table_id,
            "phase": int(row.phase),
            "opened_at_us": to_us(row.opened_at),
            "closes_at_us": to_us(row.closes_at),
            "closed_at_us": None if row.closed_at is None else to_us(row.closed_at),
        }
        async with self.engine.begin() as connection:
            moved = await connection.execute(
                update(rounds).where(rounds.c.round_id == row.round_id).values(**values)
            )
            if moved.rowcount == 0:
                await connection.execute(insert(rounds).values(round_id=row.round_id, **values))

    async def rounds_of(self, table_id: str) -> Sequence[RoundRow]:
        query = select(rounds).where(rounds.c.table_id == table_id).order_by(rounds.c.opened_at_us)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            RoundRow(
                r.round_id,
                r.table_id,
                Phase(r.phase),
                from_us(r.opened_at_us),
                from_us(r.closes_at_us),
                None if r.closed_at_us is None else from_us(r.closed_at_us),
            )
            for r in rows
        ]

    async def remembered(self, operation: str, key: str) -> Remembered | None:
        query = select(idempotency.c.request_hash, idempotency.c.response).where(
            idempotency.c.operation == operation, idempotency.c.idempotency_key == key
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else Remembered(row.request_hash, row.response)

    async def _remember(self, connection: AsyncConnection, answer: Answer, response: bytes) -> None:
        await connection.execute(
            insert(idempotency).values(
                operation=answer.operation,
                idempotency_key=answer.key,
                request_hash=answer.request_hash,
                response=response,
            )
        )
