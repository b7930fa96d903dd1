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
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casino.common.v1 import bet_pb2, table_event_pb2
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
    Column("fence", BigInteger, nullable=False, server_default="0"),
)
events = Table(
    "game_table_events",
    metadata,
    Column("table_id", String(64), ForeignKey("game_tables.table_id"), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("round_id", String(64), nullable=False),
    Column("server_time_us", BigInteger, nullable=False),
    Column("event", LargeBinary, nullable=False),
    Index("game_table_events_by_round", "round_id"),
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
    Column("record", LargeBinary, nullable=True),
    Index("game_rounds_by_table", "table_id", "opened_at_us"),
    Index("game_rounds_unfinished", "table_id", "phase"),
)
bets = Table(
    "game_bets",
    metadata,
    Column("bet_id", String(128), primary_key=True),
    Column("round_id", String(64), ForeignKey("game_rounds.round_id"), nullable=False),
    Column("player_id", String(128), nullable=False),
    Column("received", BigInteger, nullable=False),
    Column("accepted", Boolean, nullable=False),
    Column("stake", BigInteger, nullable=False),
    Column("record", LargeBinary, nullable=False),
    Index("game_bets_by_round", "round_id", "received"),
    Index("game_bets_by_player", "player_id", "round_id"),
)
studio_events = Table(
    "game_studio_events",
    metadata,
    Column("table_id", String(64), ForeignKey("game_tables.table_id"), primary_key=True),
    Column("studio_sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("digest", String(64), nullable=False),
    Column("answer", LargeBinary, nullable=False),
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


class RoundMissing(LookupError):
    """No round with that id."""


class StaleFence(Exception):
    """The table has a newer owner: the writer's fencing token is no longer the table's."""


@dataclass(frozen=True)
class RoundRow:
    """A round as stored: its recall record (without bets and events) and its close time."""

    record: game_pb2.Round
    closes_at: datetime

    @property
    def phase(self) -> Phase:
        return Phase(self.record.phase)


@dataclass(frozen=True)
class StudioMark:
    """A studio event consumed: its sequence, the hash of its payload, and the answer given
    (an ApplyStudioEventResponse, or a google.rpc.Status for a refusal), kept in the same
    transaction as its effect so it is applied exactly once."""

    table_id: str
    studio_sequence: int
    digest: str
    answer: bytes


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
        return _table_row(row)

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
        self,
        connection: AsyncConnection,
        event: table_event_pb2.TableEvent,
        fence: int | None = None,
    ) -> table_event_pb2.TableEvent:
        """Log under the next sequence; with ``fence``, only while it is the table's token."""
        query = update(tables).where(tables.c.table_id == event.table_id)
        if fence is not None:
            query = query.where(tables.c.fence == fence)
        sequence = (
            await connection.execute(
                query.values(last_sequence=tables.c.last_sequence + 1).returning(
                    tables.c.last_sequence
                )
            )
        ).scalar_one_or_none()
        if sequence is None:
            await self._require_table(connection, event.table_id)
            raise StaleFence(f"table {event.table_id}: fencing token {fence} is stale")
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

    async def take_fence(self, table_id: str) -> int:
        """A fencing token for a new owner of the table; every older token is stale from now."""
        async with self.engine.begin() as connection:
            token = (
                await connection.execute(
                    update(tables)
                    .where(tables.c.table_id == table_id)
                    .values(fence=tables.c.fence + 1)
                    .returning(tables.c.fence)
                )
            ).scalar_one_or_none()
        if token is None:
            raise TableMissing(table_id)
        return int(token)

    async def save_round(
        self,
        row: RoundRow,
        logged: Sequence[table_event_pb2.TableEvent],
        fence: int,
        studio: Callable[[list[table_event_pb2.TableEvent]], StudioMark] | None = None,
        answer: Answer | None = None,
    ) -> list[table_event_pb2.TableEvent]:
        """Insert a round or move it on, and log the transition's events, in one transaction,
        as the owner holding ``fence`` (StaleFence otherwise: nothing is written). The call
        that caused it, if any, keeps its answer (built from the first event) in it too."""
        if not logged:
            raise ValueError("every round transition logs at least one event")
        record = row.record
        values = {
            "table_id": record.table_id,
            "phase": record.phase,
            "opened_at_us": to_us(record.opened_at.ToDatetime(UTC)),
            "closes_at_us": to_us(row.closes_at),
            "closed_at_us": (
                to_us(record.closed_at.ToDatetime(UTC)) if record.HasField("closed_at") else None
            ),
            "record": record.SerializeToString(deterministic=True),
        }
        async with self.engine.begin() as connection:
            stored = [await self._append(connection, event, fence) for event in logged]
            moved = await connection.execute(
                update(rounds).where(rounds.c.round_id == record.round_id).values(**values)
            )
            if moved.rowcount == 0:
                await connection.execute(insert(rounds).values(round_id=record.round_id, **values))
            if studio is not None:
                await self._mark(connection, studio(stored))
            if answer is not None:
                await self._remember(connection, answer, answer.respond(stored[0]))
        return stored

    async def mark_studio(self, mark: StudioMark) -> None:
        """Consume a studio sequence that changed no round (a refusal, a table event)."""
        async with self.engine.begin() as connection:
            await self._mark(connection, mark)

    async def _mark(self, connection: AsyncConnection, mark: StudioMark) -> None:
        await connection.execute(
            insert(studio_events).values(
                table_id=mark.table_id,
                studio_sequence=mark.studio_sequence,
                digest=mark.digest,
                answer=mark.answer,
            )
        )

    async def studio_mark(self, table_id: str, studio_sequence: int) -> StudioMark | None:
        query = select(studio_events).where(
            studio_events.c.table_id == table_id,
            studio_events.c.studio_sequence == studio_sequence,
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return (
            None if row is None else StudioMark(table_id, studio_sequence, row.digest, row.answer)
        )

    async def last_studio_sequence(self, table_id: str) -> int:
        query = select(func.max(studio_events.c.studio_sequence)).where(
            studio_events.c.table_id == table_id
        )
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one_or_none() or 0)

    async def add_bets(
        self, round_id: str, received: Sequence[tuple[game_pb2.BetRecord, int]]
    ) -> None:
        """Keep bets as received (``received`` orders them), accepted or rejected."""
        rows = [
            {
                "bet_id": record.bet.bet_id,
                "round_id": round_id,
                "player_id": record.bet.player_id,
                "received": order,
                "accepted": record.status == bet_pb2.BET_STATUS_ACCEPTED,
                "stake": record.bet.stake.amount_minor,
                "record": record.SerializeToString(deterministic=True),
            }
            for record, order in received
        ]
        if rows:
            async with self.engine.begin() as connection:
                await connection.execute(insert(bets), rows)

    async def round(self, round_id: str) -> RoundRow:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(rounds.c.record, rounds.c.closes_at_us).where(
                        rounds.c.round_id == round_id
                    )
                )
            ).first()
        if row is None or row.record is None:
            raise RoundMissing(round_id)
        return _round_row(row)

    async def unfinished_rounds(self, table_id: str) -> list[RoundRow]:
        """Rounds of the table neither settled nor voided, oldest first."""
        query = (
            select(rounds.c.record, rounds.c.closes_at_us)
            .where(
                rounds.c.table_id == table_id,
                rounds.c.phase.in_([Phase.OPEN, Phase.BETS_CLOSED, Phase.RESULT]),
            )
            .order_by(rounds.c.opened_at_us)
        )
        async with self.engine.connect() as connection:
            return [_round_row(r) for r in (await connection.execute(query)).all()]

    async def latest_round(self, table_id: str) -> RoundRow | None:
        query = (
            select(rounds.c.record, rounds.c.closes_at_us)
            .where(rounds.c.table_id == table_id)
            .order_by(rounds.c.opened_at_us.desc())
            .limit(1)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _round_row(row)

    async def rounds_page(
        self,
        *,
        table_id: str = "",
        player_id: str = "",
        start_us: int | None,
        end_us: int | None,
        before: tuple[int, str] | None,
        limit: int,
    ) -> list[RoundRow]:
        """Rounds of a table, or those where a player had an accepted bet, newest first;
        ``before`` is the (opened_at_us, round_id) of the previous page's last round."""
        query = select(rounds.c.record, rounds.c.closes_at_us, rounds.c.opened_at_us)
        if table_id:
            query = query.where(rounds.c.table_id == table_id)
        else:
            played = select(bets.c.round_id).where(
                bets.c.player_id == player_id, bets.c.accepted.is_(True)
            )
            query = query.where(rounds.c.round_id.in_(played))
        if start_us is not None:
            query = query.where(rounds.c.opened_at_us >= start_us)
        if end_us is not None:
            query = query.where(rounds.c.opened_at_us < end_us)
        if before is not None:
            query = query.where(tuple_(rounds.c.opened_at_us, rounds.c.round_id) < tuple_(*before))
        query = query.order_by(rounds.c.opened_at_us.desc(), rounds.c.round_id.desc()).limit(limit)
        async with self.engine.connect() as connection:
            return [_round_row(r) for r in (await connection.execute(query)).all() if r.record]

    async def bets_of(
        self, round_id: str, player_id: str = "", bet_ids: Sequence[str] = ()
    ) -> list[game_pb2.BetRecord]:
        """A round's bets in receipt order (only ``player_id``'s, or only ``bet_ids``, when
        given)."""
        query = select(bets.c.record).where(bets.c.round_id == round_id)
        if player_id:
            query = query.where(bets.c.player_id == player_id)
        if bet_ids:
            query = query.where(bets.c.bet_id.in_(bet_ids))
        query = query.order_by(bets.c.received, bets.c.bet_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [game_pb2.BetRecord.FromString(r.record) for r in rows]

    async def round_events(self, round_id: str) -> list[table_event_pb2.TableEvent]:
        query = (
            select(events.c.event).where(events.c.round_id == round_id).order_by(events.c.sequence)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [table_event_pb2.TableEvent.FromString(r.event) for r in rows]

    async def all_tables(self) -> list[TableRow]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(tables).order_by(tables.c.table_id))).all()
        return [_table_row(r) for r in rows]

    async def remembered(self, operation: str, key: str) -> Remembered | None:
        query = select(idempotency.c.request_hash, idempotency.c.response).where(
            idempotency.c.operation == operation, idempotency.c.idempotency_key == key
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else Remembered(row.request_hash, row.response)

    async def remember(self, answer: Answer) -> None:
        """Keep an answer computed outside a transaction of its own; a concurrent call that
        kept one first wins (both answers describe the same effect)."""
        try:
            async with self.engine.begin() as connection:
                await self._remember(connection, answer, answer.respond(None))
        except IntegrityError:
            pass

    async def _remember(self, connection: AsyncConnection, answer: Answer, response: bytes) -> None:
        await connection.execute(
            insert(idempotency).values(
                operation=answer.operation,
                idempotency_key=answer.key,
                request_hash=answer.request_hash,
                response=response,
            )
        )


def _table_row(row: Any) -> TableRow:
    return TableRow(
        row.table_id,
        game_pb2.TableConfig.FromString(row.config),
        row.status,
        from_us(row.created_at_us),
        row.last_sequence,
    )


def _round_row(row: Any) -> RoundRow:
    return RoundRow(game_pb2.Round.FromString(row.record), from_us(row.closes_at_us))
