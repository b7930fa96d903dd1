"""In-process fan-out of table events to many player streams.

One upstream subscription per table per process, however many players watch it; each
player stream has its own bounded queue, so a slow player never stalls the others: when
its queue overflows, the backlog is dropped and the stream continues with a state snapshot
(the client rebuilds from it). Each stream numbers what it delivers from 1 without gaps and
keeps the last deliveries, so a client that reconnects with its last sequence plus one
misses nothing; an older or unknown resume point gets a snapshot instead. Personal messages
(``push``, an event whose sequence is 0) join one stream's queue between table events; a
resync keeps them, since a snapshot does not repeat them.

The hub is pure asyncio: the upstream is any async iterator factory and the snapshot any
coroutine, so it is tested without gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, NamedTuple, TypeVar

from casino_kit.logs import get_logger

log = get_logger(__name__)
SWEEP_S = 1.0

E = TypeVar("E")
S = TypeVar("S")

Source = Callable[[str, int], AsyncIterator[E]]
"""``source(table_id, after_sequence)``: the table's events with a greater table sequence
(``after_sequence`` 0: from now on), in order. It may end or fail; the hub reconnects."""

Snapshot = Callable[[str, str], Awaitable[tuple[S, int]]]
"""``snapshot(table_id, stream_key)``: the state for one stream, and the table sequence of the
newest event it includes."""


class Delivery(NamedTuple, Generic[E, S]):
    """One message of a stream: a table event or a snapshot, with its stream sequence (a
    tuple: one is made per stream per event)."""

    sequence: int
    event: E | None = None
    snapshot: S | None = None


class _Stream(Generic[E, S]):
    """One player's stream at one table; it outlives a connection for ``retention_s``."""

    def __init__(self, key: str, next_sequence: int, retain: int) -> None:
        self.key = key
        self.next_sequence = next_sequence
        self.sent: deque[Delivery[E, S]] = deque(maxlen=retain)
        self.replay: deque[Delivery[E, S]] = deque()
        self.queue: deque[E] = deque()
        self.needs_snapshot = True
        self.floor = 0
        """Table sequence of the newest event this stream has delivered or skipped."""
        self.wake = asyncio.Event()
        self.owner: object | None = None
        self.detached_at: float | None = None
        self.resyncs = 0

    def resync(self, sequence_of: Callable[[E], int]) -> None:
        """Drop the backlog of table events; the next delivery is a snapshot."""
        personal = [item for item in self.queue if sequence_of(item) == 0]
        self.queue.clear()
        self.queue.extend(personal)
        self.needs_snapshot = True
        self.resyncs += 1
        self.wake.set()


class _Table(Generic[E, S]):
    def __init__(self, table_id: str) -> None:
        self.table_id = table_id
        self.streams: dict[str, _Stream[E, S]] = {}
        self.last_sequence = 0
        self.task: asyncio.Task[None] | None = None
        self.swept_at: float | None = None


class FanoutHub(Generic[E, S]):
    """Fans each table's single upstream out to its subscribed streams."""

    def __init__(
        self,
        source: Source[E],
        snapshot: Snapshot[S],
        sequence_of: Callable[[E], int],
        *,
        queue_size: int = 256,
        retain: int = 128,
        retention_s: float = 300.0,
        reconnect_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._snapshot = snapshot
        self._sequence_of = sequence_of
        self.queue_size = queue_size
        self.retain = retain
        self.retention_s = retention_s
        self.reconnect_s = reconnect_s
        self._clock = clock
        self._tables: dict[str, _Table[E, S]] = {}
        self.upstream_opens = 0
        """How many upstream subscriptions were opened, over the hub's life (for tests)."""

    def subscribe(
        self, table_id: str, stream_key: str, from_sequence: int = 0
    ) -> Subscription[E, S]:
        """A stream of ``table_id`` for ``stream_key`` (one player), from ``from_sequence``
        (0: start with a snapshot). Use it as ``async with`` and iterate it."""
        return Subscription(self, table_id, stream_key, from_sequence)

    def upstreams(self) -> int:
        """Upstream subscriptions running now."""
        return sum(1 for t in self._tables.values() if t.task is not None and not t.task.done())

    def push(self, table_id: str, stream_key: str, event: E) -> bool:
        """Queue a personal ``event`` (sequence 0) on one stream of this process; False when
        the stream is not here."""
        table = self._tables.get(table_id)
        stream = None if table is None else table.streams.get(stream_key)
        if stream is None:
            return False
        stream.queue.append(event)
        stream.wake.set()
        return True

    def resync(self, table_id: str) -> None:
        """Every stream of ``table_id`` goes on from a snapshot (it may have missed
        something)."""
        table = self._tables.get(table_id)
        for stream in () if table is None else table.streams.values():
            stream.resync(self._sequence_of)

    def watching(self, table_id: str) -> list[str]:
        """The streams of ``table_id`` connected to this process now."""
        table = self._tables.get(table_id)
        streams = () if table is None else table.streams.values()
        return [stream.key for stream in streams if stream.owner is not None]

    def connected_keys(self) -> set[str]:
        """The stream keys (players) with a stream of any table connected to this process.

        Safe to call from the metrics exporter's thread: each dict is copied in one step
        (under the GIL) before it is walked, so streams coming and going cannot break the walk.
        """
        return {
            stream.key
            for table in list(self._tables.values())
            for stream in list(table.streams.values())
            if stream.owner is not None
        }

    def stream_keys(self, table_id: str) -> list[str]:
        """The streams of ``table_id`` this process holds, connected or awaiting resume."""
        table = self._tables.get(table_id)
        return [] if table is None else list(table.streams)

    def stream_resyncs(self, table_id: str, stream_key: str) -> int:
        table = self._tables.get(table_id)
        stream = None if table is None else table.streams.get(stream_key)
        return 0 if stream is None else stream.resyncs

    async def close(self) -> None:
        """Stop every upstream; safe to call twice."""
        tables, self._tables = list(self._tables.values()), {}
        for table in tables:
            await self._stop(table)
            for stream in table.streams.values():
                stream.owner = None
                stream.wake.set()

    # -- attach and detach --------------------------------------------------------------------

    def _attach(self, table_id: str, key: str, from_sequence: int, owner: object) -> _Stream[E, S]:
        table = self._tables.get(table_id)
        if table is None:
            table = self._tables[table_id] = _Table(table_id)
        self._sweep(table)
        stream = table.streams.get(key)
        if from_sequence > 0 and stream is not None and self._retained(stream, from_sequence):
            stream.replay = deque(d for d in stream.sent if d.sequence >= from_sequence)
        else:
            # Unknown, too old or a fresh start: a new stream whose first message is a
            # snapshot, numbered so the client sees no gap.
            stream = _Stream(key, max(from_sequence, 1), self.retain)
            table.streams[key] = stream
        if stream.owner is not None:
            stream.wake.set()  # a newer connection of the same player takes the stream over
        stream.owner = owner
        stream.detached_at = None
        if table.task is None or table.task.done():
            self.upstream_opens += 1
            table.task = asyncio.create_task(self._pump(table), name=f"fanout:{table_id}")
        return stream

    @staticmethod
    def _retained(stream: _Stream[E, S], from_sequence: int) -> bool:
        if from_sequence == stream.next_sequence:
            return True
        return bool(stream.sent) and stream.sent[0].sequence <= from_sequence < stream.next_sequence

    async def _detach(self, table_id: str, stream: _Stream[E, S], owner: object) -> None:
        if stream.owner is not owner:
            return
        stream.owner = None
        stream.detached_at = self._clock()
        table = self._tables.get(table_id)
        if table is not None:
            self._sweep(table)
            if not table.streams:
                del self._tables[table_id]
                await self._stop(table)

    def _sweep(self, table: _Table[E, S]) -> None:
        """Forget streams nobody resumed within ``retention_s``. A walk of every stream runs
        at most once per ``SWEEP_S``: thousands of players joining or leaving at once would
        otherwise cost a walk each, quadratic in the crowd."""
        now = self._clock()
        if table.swept_at is not None and now - table.swept_at < min(SWEEP_S, self.retention_s):
            return
        table.swept_at = now
        expired = [
            key
            for key, s in table.streams.items()
            if s.owner is None
            and s.detached_at is not None
            and now - s.detached_at >= self.retention_s
        ]
        for key in expired:
            del table.streams[key]

    @staticmethod
    async def _stop(table: _Table[E, S]) -> None:
        task, table.task = table.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- upstream -----------------------------------------------------------------------------

    async def _pump(self, table: _Table[E, S]) -> None:
        """Read the table's one upstream and fan each event out; reconnect where it left off."""
        while True:
            try:
                async for event in self._source(table.table_id, table.last_sequence):
                    self._dispatch(table, event)
                    self._sweep(table)
                    if not table.streams:  # every stream left and expired: unsubscribe
                        if self._tables.get(table.table_id) is table:
                            del self._tables[table.table_id]
                        table.task = None
                        return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("table upstream failed; reconnecting", table_id=table.table_id)
            await asyncio.sleep(self.reconnect_s)

    def _dispatch(self, table: _Table[E, S], event: E) -> None:
        sequence = self._sequence_of(event)
        if sequence <= table.last_sequence:
            return  # a duplicate after a reconnect
        gap = table.last_sequence != 0 and sequence != table.last_sequence + 1
        table.last_sequence = sequence
        for stream in table.streams.values():
            if gap or len(stream.queue) >= self.queue_size:
                stream.resync(self._sequence_of)
            stream.queue.append(event)
            stream.wake.set()

    # -- delivery -----------------------------------------------------------------------------

    async def _next(self, table_id: str, stream: _Stream[E, S], owner: object) -> Delivery[E, S]:
        while True:
            if stream.owner is not owner:
                raise StopAsyncIteration
            if stream.replay:
                return stream.replay.popleft()
            if stream.needs_snapshot:
                stream.needs_snapshot = False
                state, included = await self._snapshot(table_id, stream.key)
                if stream.owner is not owner:
                    raise StopAsyncIteration
                stream.floor = included
                return self._record(stream, Delivery(stream.next_sequence, snapshot=state))
            while stream.queue and not stream.needs_snapshot:
                event = stream.queue.popleft()
                sequence = self._sequence_of(event)
                if sequence == 0:  # personal: not ordered against table events
                    return self._record(stream, Delivery(stream.next_sequence, event=event))
                if sequence <= stream.floor:
                    continue  # already part of the snapshot
                if stream.floor != 0 and sequence != stream.floor + 1:
                    # The snapshot is older than the backlog: take another.
                    stream.resync(self._sequence_of)
                    break
                stream.floor = sequence
                return self._record(stream, Delivery(stream.next_sequence, event=event))
            if not stream.queue and not stream.needs_snapshot:
                stream.wake.clear()
                await stream.wake.wait()

    @staticmethod
    def _record(stream: _Stream[E, S], delivery: Delivery[E, S]) -> Delivery[E, S]:
        stream.next_sequence += 1
        stream.sent.append(delivery)
        return delivery


class Subscription(Generic[E, S]):
    """One connection's view of a stream: ``async with`` attaches, leaving detaches."""

    def __init__(self, hub: FanoutHub[E, S], table_id: str, key: str, from_sequence: int) -> None:
        self._hub = hub
        self._table_id = table_id
        self._key = key
        self._from = from_sequence
        self._stream: _Stream[E, S] | None = None

    async def __aenter__(self) -> Subscription[E, S]:
        self._stream = self._hub._attach(self._table_id, self._key, self._from, self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stream is not None:
            await self._hub._detach(self._table_id, self._stream, self)

    def __aiter__(self) -> Subscription[E, S]:
        return self

    def __anext__(self) -> Awaitable[Delivery[E, S]]:
        if self._stream is None:
            raise RuntimeError("use the subscription as `async with` first")
        return self._hub._next(self._table_id, self._stream, self)
