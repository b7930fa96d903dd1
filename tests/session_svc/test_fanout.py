"""The fan-out hub with an in-process upstream: one upstream per table, bounded queues,
snapshots for slow or new streams, gap-free per-stream sequences and resume."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from session_svc.fanout import Delivery, FanoutHub


@dataclass(frozen=True)
class Event:
    sequence: int


@dataclass
class Table:
    """A fake game_svc table: publishes events, serves subscriptions and snapshots."""

    events: list[Event] = field(default_factory=list)
    subscribers: list[asyncio.Queue[Event | None]] = field(default_factory=list)
    opened: list[tuple[str, int]] = field(default_factory=list)
    snapshots: int = 0

    def publish(self, count: int = 1) -> None:
        for _ in range(count):
            event = Event(len(self.events) + 1)
            self.events.append(event)
            for queue in self.subscribers:
                queue.put_nowait(event)

    def end_subscriptions(self) -> None:
        for queue in self.subscribers:
            queue.put_nowait(None)
        self.subscribers.clear()

    async def source(self, table_id: str, after: int) -> AsyncIterator[Event]:
        self.opened.append((table_id, after))
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        if after:
            for missed in self.events[after:]:
                queue.put_nowait(missed)
        self.subscribers.append(queue)
        while True:
            event = await queue.get()
            if event is None:
                return
            yield event

    async def snapshot(self, table_id: str, key: str) -> tuple[str, int]:
        self.snapshots += 1
        return f"{table_id}@{len(self.events)}", len(self.events)


def hub_for(table: Table, **options: object) -> FanoutHub[Event, str]:
    return FanoutHub(
        table.source,
        table.snapshot,
        lambda e: e.sequence,
        reconnect_s=0.01,
        **options,  # type: ignore[arg-type]
    )


async def take(subscription: object, count: int) -> list[Delivery[Event, str]]:
    got = []
    async for delivery in subscription:  # type: ignore[attr-defined]
        got.append(delivery)
        if len(got) == count:
            break
    return got


async def until(condition: object, timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_many_streams_share_one_upstream() -> None:
    table = Table()
    hub = hub_for(table)
    subscriptions = [hub.subscribe("t1", f"p{i}") for i in range(50)]
    for sub in subscriptions:
        await sub.__aenter__()
    firsts = await asyncio.gather(*(take(s, 1) for s in subscriptions))
    assert all(f[0].snapshot == "t1@0" and f[0].sequence == 1 for f in firsts)
    await until(lambda: len(table.subscribers) == 1)
    table.publish(5)
    rest = await asyncio.gather(*(take(s, 5) for s in subscriptions))
    for got in rest:
        assert [d.sequence for d in got] == [2, 3, 4, 5, 6]
        assert [d.event.sequence for d in got if d.event] == [1, 2, 3, 4, 5]
    assert hub.upstream_opens == 1 and table.opened == [("t1", 0)]
    for sub in subscriptions:
        await sub.__aexit__(None, None, None)
    await hub.close()


async def test_a_slow_stream_is_resynchronised_without_stalling_others() -> None:
    table = Table()
    hub = hub_for(table, queue_size=8)
    async with hub.subscribe("t1", "fast") as fast, hub.subscribe("t1", "slow") as slow:
        await take(fast, 1)
        await take(slow, 1)
        await until(lambda: len(table.subscribers) == 1)
        seen: list[int] = []

        async def read_fast() -> None:
            async for delivery in fast:
                assert delivery.event is not None
                seen.append(delivery.event.sequence)
                if len(seen) == 100:
                    return

        reader = asyncio.create_task(read_fast())
        for _ in range(100):
            table.publish()
            await asyncio.sleep(0)  # the fast player keeps up, the slow one reads nothing
        await asyncio.wait_for(reader, 2)
        assert seen == list(range(1, 101))
        got = await take(slow, 1)
        assert got[0].snapshot == "t1@100" and got[0].sequence == 2
        assert hub.stream_resyncs("t1", "slow") >= 1
        assert hub.stream_resyncs("t1", "fast") == 0
        table.publish()
        after = await take(slow, 1)
        assert after[0].sequence == 3 and after[0].event == Event(101)
    await hub.close()


async def test_events_already_in_the_snapshot_are_not_repeated() -> None:
    table = Table()
    hub = hub_for(table, queue_size=4)
    async with hub.subscribe("t1", "p") as sub:
        await take(sub, 1)
        await until(lambda: len(table.subscribers) == 1)
        table.publish(10)  # overflow: backlog dropped, snapshot at 10 next
        await asyncio.sleep(0.01)
        table.publish(2)
        got = await take(sub, 1)
        table.publish()
        got += await take(sub, 1)
    kinds = [(d.sequence, d.snapshot or d.event) for d in got]
    assert kinds == [(2, "t1@12"), (3, Event(13))]
    await hub.close()


async def test_a_client_resumes_from_its_last_sequence_and_misses_nothing() -> None:
    table = Table()
    hub = hub_for(table)
    async with hub.subscribe("t1", "p") as sub:
        await take(sub, 1)
        await until(lambda: len(table.subscribers) == 1)
        table.publish(3)
        first = await take(sub, 2)  # sequences 2 and 3 processed, 4 unread
    assert [d.sequence for d in first] == [2, 3]
    table.publish(2)  # arrives while disconnected
    async with hub.subscribe("t1", "p", from_sequence=4) as again:
        resumed = await take(again, 3)
    assert [(d.sequence, d.event) for d in resumed] == [(4, Event(3)), (5, Event(4)), (6, Event(5))]
    assert table.snapshots == 1
    await hub.close()


async def test_a_resume_point_that_is_not_retained_gets_a_snapshot_without_a_gap() -> None:
    table = Table()
    hub = hub_for(table, retain=4)
    async with hub.subscribe("t1", "p") as sub:
        await take(sub, 1)
        await until(lambda: len(table.subscribers) == 1)
        table.publish(10)
        await take(sub, 10)  # sequences 2..11; only 8..11 retained
    async with hub.subscribe("t1", "p", from_sequence=3) as again:
        got = await take(again, 1)
    assert got[0].snapshot == "t1@10" and got[0].sequence == 3
    async with hub.subscribe("t1", "unknown", from_sequence=40) as fresh:
        got = await take(fresh, 1)
    assert got[0].snapshot is not None and got[0].sequence == 40
    await hub.close()


async def test_retained_streams_expire_and_the_upstream_stops() -> None:
    table = Table()
    now = [0.0]
    hub = hub_for(table, retention_s=10.0, clock=lambda: now[0])
    async with hub.subscribe("t1", "p") as sub:
        await take(sub, 1)
        await until(lambda: len(table.subscribers) == 1)
    assert hub.upstreams() == 1  # kept for a resume
    now[0] = 11.0
    table.publish()
    now[0] = 13.0
    table.publish()
    await until(lambda: hub.upstreams() == 0)
    await hub.close()


async def test_the_upstream_reconnects_after_its_last_sequence() -> None:
    table = Table()
    hub = hub_for(table)
    async with hub.subscribe("t1", "p") as sub:
        await take(sub, 1)
        await until(lambda: len(table.subscribers) == 1)
        table.publish(2)
        table.end_subscriptions()
        table.publish(2)  # published while the hub is disconnected
        got = await take(sub, 4)
    assert [d.event for d in got] == [Event(1), Event(2), Event(3), Event(4)]
    assert table.opened == [("t1", 0), ("t1", 2)]
    await hub.close()


async def test_an_upstream_gap_resynchronises_every_stream() -> None:
    table = Table()
    hub = hub_for(table)
    async with hub.subscribe("t1", "a") as a, hub.subscribe("t1", "b") as b:
        await take(a, 1)
        await take(b, 1)
        await until(lambda: len(table.subscribers) == 1)
        table.publish()
        for sub in (a, b):
            assert (await take(sub, 1))[0].event == Event(1)
        table.events.append(Event(2))  # lost on its way to the hub
        table.publish()  # sequence 3 arrives right after 1
        for sub in (a, b):
            got = await take(sub, 1)
            assert (got[0].sequence, got[0].snapshot) == (3, "t1@3")
    await hub.close()


async def test_a_newer_connection_takes_the_stream_over() -> None:
    table = Table()
    hub = hub_for(table)
    old = hub.subscribe("t1", "p")
    await old.__aenter__()
    await take(old, 1)
    ended = asyncio.create_task(take(old, 1))
    async with hub.subscribe("t1", "p", from_sequence=2) as new:
        await until(lambda: len(table.subscribers) == 1)
        assert await asyncio.wait_for(ended, 1) == []
        table.publish()
        assert (await take(new, 1))[0].sequence == 2
    await old.__aexit__(None, None, None)
    await hub.close()


async def test_the_metrics_thread_can_count_players_while_streams_come_and_go() -> None:
    """The Prometheus exporter reads ``connected_keys`` from its own thread."""
    table = Table()
    hub = hub_for(table, retention_s=0.0)
    failures: list[BaseException] = []
    running = True

    def scrape() -> None:
        while running:
            try:
                hub.connected_keys()
            except BaseException as error:  # any failure is the finding
                failures.append(error)
                return

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for round_ in range(40):
            subscriptions = [hub.subscribe(f"t{i % 7}", f"p{round_}-{i}") for i in range(200)]
            for subscription in subscriptions:
                await subscription.__aenter__()
            assert len(hub.connected_keys()) == 200
            for subscription in subscriptions:
                await subscription.__aexit__(None, None, None)
    finally:
        running = False
        scraper.join()
        await hub.close()
    assert not failures, failures[0]
