"""The table event stream: every event is logged first, then fanned out to live subscribers.

A subscription registers for live events *before* it reads the log, so an event committed
while it reads is either in what it read or in its queue; it then skips sequences it has
already sent and fills any hole from the log. That is how ``Subscribe`` resumes with no
gap and no duplicate. Fan-out is in-process from the replica that owns the table; on any
other replica a subscriber that hears nothing for ``poll_s`` reads the log, so it also
sees what the owner wrote. A subscriber whose queue overflows is cut off and resumes from
its last sequence plus one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from casino.common.v1 import table_event_pb2
from game_svc.store import Store

TableEvent = table_event_pb2.TableEvent
PAGE = 500


class FellBehind(Exception):
    """The subscriber did not keep up; the server ends its stream with UNAVAILABLE and it
    resubscribes from its last sequence plus one."""


class _Listener:
    def __init__(self, table_id: str, capacity: int) -> None:
        self.table_id = table_id
        self.queue: asyncio.Queue[TableEvent | None] = asyncio.Queue(capacity + 1)
        self.capacity = capacity

    def offer(self, event: TableEvent) -> bool:
        """Queue ``event``; on overflow queue the end marker instead and report False."""
        if self.queue.qsize() >= self.capacity:
            self.queue.put_nowait(None)
            return False
        self.queue.put_nowait(event)
        return True


class EventLog:
    """Appends table events in sequence order and serves them, stored then live."""

    def __init__(self, store: Store, capacity: int = 10_000, poll_s: float = 0.5) -> None:
        self.store = store
        self.capacity = capacity
        self.poll_s = poll_s
        self._listeners: dict[str, set[_Listener]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, table_id: str) -> asyncio.Lock:
        """Held while appending, so live events leave in sequence order."""
        return self._locks.setdefault(table_id, asyncio.Lock())

    def publish(self, event: TableEvent) -> None:
        """Hand a committed event to every live subscriber of its table."""
        for listener in list(self._listeners.get(event.table_id, ())):
            if not listener.offer(event):
                self._listeners[event.table_id].discard(listener)

    async def append(self, event: TableEvent) -> TableEvent:
        async with self.lock(event.table_id):
            stored = await self.store.append(event)
            self.publish(stored)
            return stored

    async def subscribe(
        self, table_id: str, from_sequence: int
    ) -> AsyncGenerator[TableEvent, None]:
        """Events of ``table_id`` from ``from_sequence`` (0: only newer ones), then live.

        Raises store.TableMissing before yielding anything for an unknown table.
        """
        listener = _Listener(table_id, self.capacity)
        self._listeners.setdefault(table_id, set()).add(listener)
        try:
            last = (await self.store.table(table_id)).last_sequence
            next_sequence = last + 1 if from_sequence == 0 else from_sequence
            while True:
                page = await self.store.events(table_id, next_sequence, PAGE)
                for event in page:
                    yield event
                    next_sequence = event.sequence + 1
                if len(page) < PAGE:
                    break
            while True:
                try:
                    live = await asyncio.wait_for(listener.queue.get(), self.poll_s)
                except TimeoutError:  # quiet here: another replica may be writing
                    for stored in await self.store.events(table_id, next_sequence, PAGE):
                        yield stored
                        next_sequence = stored.sequence + 1
                    continue
                if live is None:
                    raise FellBehind(f"table {table_id}: subscriber fell behind")
                if live.sequence < next_sequence:
                    continue  # already sent from the log
                while next_sequence < live.sequence:  # a hole: fill it from the log
                    page = await self.store.events(
                        table_id, next_sequence, PAGE, to_sequence=live.sequence - 1
                    )
                    if not page:
                        raise FellBehind(f"table {table_id}: subscriber fell behind")
                    for missing in page:
                        yield missing
                        next_sequence = missing.sequence + 1
                yield live
                next_sequence = live.sequence + 1
        finally:
            listeners = self._listeners.get(table_id, set())
            listeners.discard(listener)
            if not listeners:
                self._listeners.pop(table_id, None)
