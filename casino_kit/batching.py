"""Adaptive batching: what concurrent callers submit goes out in groups, without a timer.

A group leaves as soon as fewer than ``max_in_flight`` groups are under way; what arrives
meanwhile waits and leaves together in the next one. Under light load every item goes at
once, alone; under heavy load groups grow by themselves until one round trip carries
hundreds of items. This is how a service turns many small calls into a few large ones
(one pipeline, one stake call, one transaction) without adding latency to any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs ``process`` over groups of submitted items; ``process`` returns one result per
    item, in order, or raises, which fails every caller of the group."""

    def __init__(
        self,
        process: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_in_flight: int,
        max_items: int,
    ) -> None:
        self._process = process
        self._max_in_flight = max_in_flight
        self._max_items = max_items
        self._queue: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._scheduled = False

    async def submit(self, item: T) -> R:
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """The result of each item; the items of one call stay together, in order, in one
        group (alone in it when they are more than ``max_items``)."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append((items, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        # call_soon: the callers that run in this turn of the event loop join the group.
        if not self._scheduled and self._queue and len(self._in_flight) < self._max_in_flight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        count, size = 0, 0
        for items, _ in self._queue:
            if count and size + len(items) > self._max_items:
                break
            count, size = count + 1, size + len(items)
        group = self._queue[:count]
        del self._queue[:count]
        task = asyncio.get_running_loop().create_task(self._run(group))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)
        self._schedule()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._schedule()

    async def _run(self, group: list[tuple[Sequence[T], asyncio.Future[list[R]]]]) -> None:
        try:
            results = await self._process([item for items, _ in group for item in items])
        except Exception as error:
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:
            for _, future in group:
                future.cancel()
            raise
        first = 0
        for items, future in group:
            if not future.done():
                future.set_result(list(results[first : first + len(items)]))
            first += len(items)
