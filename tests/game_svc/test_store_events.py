"""The event log on SQLite and PostgreSQL: per-table sequences, resume with no gap or duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from casino.common.v1 import common_pb2, table_event_pb2
from casino.game.v1 import game_pb2
from casino_kit.sql import create_engine, migrate
from game_svc.clock import timestamp
from game_svc.events import EventLog, FellBehind
from game_svc.rounds import Phase
from game_svc.store import Answer, RoundRow, StaleFence, Store, TableMissing, metadata
from tests.conftest import POSTGRES_ADMIN_URL

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty game database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'game.db'}"
        async with _migrated(url) as created:
            yield created
        return
    name = f"casino_game_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        async with _migrated(f"{base}/{name}") as created:
            yield created
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def _migrated(url: str) -> AsyncIterator[AsyncEngine]:
    created = create_engine(url, pool_size=4)
    try:
        await migrate(created, "game_svc")
        yield created
    finally:
        await created.dispose()


def answer(key: str) -> Answer:
    return Answer(
        "Test", key, "hash", lambda event: b"" if event is None else b"%d" % event.sequence
    )


async def new_table(store: Store, table_id: str) -> None:
    config = game_pb2.TableConfig(name=table_id, currency="EUR")
    await store.create_table(table_id, config, 1, NOW, answer(f"create-{table_id}"))


def event(table_id: str, n: int) -> table_event_pb2.TableEvent:
    return table_event_pb2.TableEvent(
        table_id=table_id,
        server_time=timestamp(NOW + timedelta(seconds=n)),
        table_resumed=table_event_pb2.TableResumed(detail=f"event {n}"),
    )


async def test_sequences_are_per_table_and_gapless(engine: AsyncEngine) -> None:
    store = Store(engine)
    await new_table(store, "a")
    await new_table(store, "b")
    stored = [await store.append(event(t, n)) for n, t in enumerate("aabab")]
    assert [(e.table_id, e.sequence) for e in stored] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("a", 3),
        ("b", 2),
    ]
    assert (await store.table("a")).last_sequence == 3
    assert [e.table_resumed.detail for e in await store.events("a", 2, 10)] == [
        "event 1",
        "event 3",
    ]
    assert [e.sequence for e in await store.events("a", 1, 10, to_sequence=2)] == [1, 2]
    with pytest.raises(TableMissing):
        await store.append(event("nope", 1))
    assert (await store.table("a")).last_sequence == 3


async def test_concurrent_appends_take_distinct_consecutive_sequences(engine: AsyncEngine) -> None:
    store = Store(engine)
    await new_table(store, "c")
    stored = await asyncio.gather(*(store.append(event("c", n)) for n in range(20)))
    assert sorted(e.sequence for e in stored) == list(range(1, 21))


async def test_status_change_logs_once_and_keeps_the_answer(engine: AsyncEngine) -> None:
    store = Store(engine)
    await new_table(store, "d")
    first, response = await store.set_status_and_append("d", 2, event("d", 1), answer("s1"))
    assert first is not None and first.sequence == 1 and response == b"1"
    again, response = await store.set_status_and_append("d", 2, event("d", 2), answer("s2"))
    assert again is None and response == b""
    assert (await store.table("d")).status == 2
    remembered = await store.remembered("Test", "s1")
    assert remembered is not None and remembered.response == b"1"
    with pytest.raises(TableMissing):
        await store.set_status_and_append("zz", 2, event("zz", 1), answer("s3"))


def round_event(table_id: str, n: int, round_id: str) -> table_event_pb2.TableEvent:
    logged = event(table_id, n)
    logged.round_id = round_id
    return logged


def round_record(round_id: str, table_id: str, phase: int) -> game_pb2.Round:
    return game_pb2.Round(
        round_id=round_id,
        table_id=table_id,
        phase=common_pb2.RoundPhase.ValueType(phase),
        opened_at=timestamp(NOW),
    )


async def test_rounds_move_on_with_their_events_only_under_the_current_fence(
    engine: AsyncEngine,
) -> None:
    store = Store(engine)
    await new_table(store, "e")
    closes = NOW + timedelta(seconds=15)
    first = await store.take_fence("e")
    opened = round_record("r-1", "e", Phase.OPEN)
    (logged,) = await store.save_round(
        RoundRow(opened, closes), [round_event("e", 1, "r-1")], first
    )
    assert logged.sequence == 1
    assert [r.record.round_id for r in await store.unfinished_rounds("e")] == ["r-1"]

    second = await store.take_fence("e")  # a new owner: the first token is stale now
    assert second > first
    settled = round_record("r-1", "e", Phase.SETTLED)
    with pytest.raises(StaleFence):
        await store.save_round(RoundRow(settled, closes), [round_event("e", 2, "r-1")], first)
    assert (await store.round("r-1")).phase is Phase.OPEN
    assert (await store.table("e")).last_sequence == 1

    await store.save_round(RoundRow(settled, closes), [round_event("e", 2, "r-1")], second)
    assert (await store.round("r-1")).phase is Phase.SETTLED
    assert await store.unfinished_rounds("e") == []
    assert [e.sequence for e in await store.round_events("r-1")] == [1, 2]


async def collect(stream: AsyncIterator[table_event_pb2.TableEvent], count: int) -> list[int]:
    got = []
    async for item in stream:
        got.append(item.sequence)
        if len(got) == count:
            break
    return got


async def test_subscribe_replays_then_follows_live_with_no_gap_or_duplicate(
    engine: AsyncEngine,
) -> None:
    log = EventLog(Store(engine))
    await new_table(log.store, "f")
    for n in range(5):
        await log.append(event("f", n))
    stream = log.subscribe("f", 3)
    first = await anext(stream)  # registered and reading the log now
    assert first.sequence == 3
    writer = asyncio.create_task(_append_many(log, "f", 5, 30))
    rest = await asyncio.wait_for(collect(stream, 32), 30)
    await writer
    assert [first.sequence, *rest] == list(range(3, 36))
    await stream.aclose()


async def _append_many(log: EventLog, table_id: str, start: int, count: int) -> None:
    for n in range(start, start + count):
        await log.append(event(table_id, n))
        await asyncio.sleep(0)


async def test_subscribe_from_zero_gets_only_newer_events(engine: AsyncEngine) -> None:
    log = EventLog(Store(engine))
    await new_table(log.store, "g")
    await log.append(event("g", 1))
    stream = log.subscribe("g", 0)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)
    await log.append(event("g", 2))
    assert (await asyncio.wait_for(pending, 10)).sequence == 2
    await stream.aclose()


async def test_a_hole_between_log_and_live_is_filled_from_the_log(engine: AsyncEngine) -> None:
    """An event committed but not yet published when the subscriber read the log."""
    log = EventLog(Store(engine))
    await new_table(log.store, "h")
    stream = log.subscribe("h", 1)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)  # the subscriber read an empty log and waits for live events
    hidden = await log.store.append(event("h", 1))  # committed, never published
    log.publish(await log.store.append(event("h", 2)))
    assert (await asyncio.wait_for(pending, 10)).sequence == hidden.sequence == 1
    assert (await asyncio.wait_for(anext(stream), 10)).sequence == 2
    await stream.aclose()


async def test_a_slow_subscriber_is_cut_off(engine: AsyncEngine) -> None:
    log = EventLog(Store(engine), capacity=3)
    await new_table(log.store, "i")
    stream = log.subscribe("i", 0)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)
    for n in range(6):
        await log.append(event("i", n))
    got = [(await asyncio.wait_for(pending, 10)).sequence]
    with pytest.raises(FellBehind):
        while True:
            got.append((await anext(stream)).sequence)
    assert got == [1, 2, 3, 4]  # 1 was taken at once; 2-4 filled the queue; 5 overflowed


async def test_subscribing_to_an_unknown_table_fails(engine: AsyncEngine) -> None:
    log = EventLog(Store(engine))
    with pytest.raises(TableMissing):
        await anext(log.subscribe("nope", 1))


async def test_the_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    """store.metadata and migrations/ must not drift apart (alembic autogenerate finds none)."""

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return [
            diff
            for diff in compare_metadata(context, metadata)
            if not (diff[0] == "remove_table" and diff[1].name == "alembic_version")
        ]

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
