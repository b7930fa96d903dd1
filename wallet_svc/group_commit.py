"""Group commit: concurrent requests share one transaction, and one commit (one fsync).

A writer takes whatever requests are waiting (up to ``max_batch``, after waiting at most
``window_s`` for more), runs them through ``execute`` in one transaction, then hands each
request its own outcome. While a batch commits, the next one gathers, so under load batches
grow by themselves and the commit cost is shared by hundreds of requests.

The writer has its own thread and event loop. On the server's loop, hundreds of in-flight
RPCs queue their callbacks; a batch that waits for the database a dozen times per
transaction would wait behind all of them each time. On its own loop it waits only for the
database, and batch latency stays a few round trips.

With ``lanes`` above one, that many batches run at once, each in its own transaction: while
one waits for the database, the next is prepared and sent, so the process and the database
work side by side instead of taking turns. That is safe wherever two replicas of the service
would be (``execute`` locks what it changes); a store with one write lock (SQLite) uses one.

``execute`` decides each request on its own and returns one outcome per request (an answer,
or an exception for that request alone): a refused request never fails its neighbours. If
``execute`` itself raises (the database refused the transaction: a unique violation from a
racing replica, a deadlock, a lost connection), the whole batch is retried with fresh reads;
if it keeps failing, every request is retried alone, so a poisonous request fails by itself.
Requests with the same ``dedupe`` key never share a batch: a retry that arrives while its
first attempt is still in flight waits for it, then finds the stored answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from casino_kit.logs import get_logger

log = get_logger(__name__)

C = TypeVar("C")
R = TypeVar("R")


@dataclass(slots=True)
class _Pending(Generic[C, R]):
    command: C
    future: asyncio.Future[R]


_STOP: Any = object()


class Stopped(RuntimeError):
    """The committer is stopping or stopped; the request was not run."""


class GroupCommitter(Generic[C, R]):
    """Gathers commands into batches and runs each batch in one transaction.

    ``execute``, ``on_start`` and ``on_stop`` run on the writer's own loop: whatever they use
    (database connections, above all) must be created there, in ``on_start``.
    """

    def __init__(
        self,
        execute: Callable[[Sequence[C]], Awaitable[Sequence[R | BaseException]]],
        *,
        window_s: float = 0.0,
        max_batch: int = 1000,
        lanes: int = 1,
        retries: int = 2,
        retryable: Callable[[BaseException], bool] = lambda _: True,
        on_start: Callable[[], Awaitable[None]] | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._execute = execute
        self._window_s = window_s
        self._max_batch = max_batch
        self._lanes = lanes
        self._retries = retries
        self._retryable = retryable
        self._on_start = on_start
        self._on_stop = on_stop
        self._inflight: dict[Hashable, asyncio.Future[R]] = {}
        self._main: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Pending[C, R]] = deque()
        self._signalled = False
        """A wake-up is on its way to the writer: later requests need not send another."""
        self._wakeup: asyncio.Event | None = None
        self._stopped = False
        """A lane took the stop marker: the others end after their batch."""
        self._thread: threading.Thread | None = None
        self._closing = False
        self.batches = 0
        self.requests = 0

    # --- the caller's side (the server's loop) ------------------------------------------------
    async def start(self) -> None:
        """Start the writer thread and wait until ``on_start`` ran there (idempotent)."""
        if self._thread is not None:
            return
        self._main = asyncio.get_running_loop()
        started: asyncio.Future[None] = self._main.create_future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(started,), name="group-commit", daemon=True
        )
        self._thread.start()
        await started

    async def stop(self) -> None:
        """Finish the queued requests, run ``on_stop``, end the thread (safe to call twice)."""
        self._closing = True
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._thread = None
        with contextlib.suppress(RuntimeError):  # the writer loop may already be closed
            self._enqueue(loop, _STOP)
        await asyncio.to_thread(thread.join)
        log.info("group commit stopped", batches=self.batches, requests=self.requests)

    async def submit(self, command: C, dedupe: Hashable | None = None) -> R:
        """Run ``command`` in the next batch and return its outcome once committed."""
        while dedupe is not None:
            first = self._inflight.get(dedupe)
            if first is None or first.done():  # done: committed or failed, its clean-up pending
                break
            with contextlib.suppress(BaseException):
                await asyncio.shield(first)
        if self._closing or self._loop is None:
            raise Stopped("the wallet is stopping")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        if dedupe is not None:
            self._inflight[dedupe] = future
            future.add_done_callback(lambda _: self._forget(dedupe, future))
        try:
            self._enqueue(self._loop, _Pending(command, future))
        except RuntimeError:  # the writer loop closed between the check and now
            raise Stopped("the wallet is stopping") from None
        return await asyncio.shield(future)

    def _forget(self, dedupe: Hashable, future: asyncio.Future[R]) -> None:
        """Drop ``future`` from the in-flight map, unless a retry has taken its place."""
        if self._inflight.get(dedupe) is future:
            del self._inflight[dedupe]

    def _enqueue(self, loop: asyncio.AbstractEventLoop, item: _Pending[C, R]) -> None:
        """Queue ``item``; wake the writer unless a wake-up is already on its way (one
        cross-thread wake-up per batch, not one per request)."""
        self._pending.append(item)
        if not self._signalled:
            self._signalled = True
            assert self._wakeup is not None
            loop.call_soon_threadsafe(self._wakeup.set)

    # --- the writer's side (its own thread and loop) ------------------------------------------

    def _thread_main(self, started: asyncio.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._writer(started))
        finally:
            loop.close()

    async def _writer(self, started: asyncio.Future[None]) -> None:
        assert self._main is not None
        self._wakeup = asyncio.Event()
        try:
            if self._on_start is not None:
                await self._on_start()
        except BaseException as error:
            self._main.call_soon_threadsafe(_resolve, started, error)
            return
        self._loop = asyncio.get_running_loop()
        self._main.call_soon_threadsafe(_resolve, started, None)
        try:
            await asyncio.gather(*(self._lane() for _ in range(self._lanes)))
        finally:
            self._loop = None
            for pending in self._drain():
                self._deliver([(pending, Stopped("the wallet stopped"))])
            if self._on_stop is not None:
                await self._on_stop()

    async def _lane(self) -> None:
        while True:
            batch, stopping = await self._gather()
            if batch:
                await self._run_batch(batch)
            if stopping:
                self._stopped = True
                assert self._wakeup is not None
                self._wakeup.set()  # the lanes waiting for work end too
                return

    def _drain(self) -> list[_Pending[C, R]]:
        left = []
        while self._pending:
            item = self._pending.popleft()
            if item is not _STOP:
                left.append(item)
        return left

    async def _gather(self) -> tuple[list[_Pending[C, R]], bool]:
        """The next batch, and whether the stop marker came after it."""
        assert self._wakeup is not None
        while True:
            # Re-arm before looking: a request queued after the look sends a new wake-up.
            self._wakeup.clear()
            self._signalled = False
            if self._stopped:
                return [], True
            if self._pending:
                break
            await self._wakeup.wait()
        if self._window_s > 0:
            await asyncio.sleep(self._window_s)
        batch: list[_Pending[C, R]] = []
        while self._pending and len(batch) < self._max_batch:
            item = self._pending.popleft()
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    async def _run_batch(self, batch: list[_Pending[C, R]]) -> None:
        self.batches += 1
        self.requests += len(batch)
        try:
            error = await self._attempt(batch)
            if error is None:
                return
            if len(batch) == 1:
                self._deliver([(batch[0], error)])
                return
            log.warning("batch failed; retrying one by one", size=len(batch), error=repr(error))
            for pending in batch:
                failure = await self._attempt([pending])
                if failure is not None:
                    self._deliver([(pending, failure)])
        except Exception as error:  # never let the writer die
            log.exception("batch failed", exc_info=error)
            self._deliver([(pending, error) for pending in batch])

    async def _attempt(self, batch: list[_Pending[C, R]]) -> BaseException | None:
        """Run ``batch``, retrying the whole of it; return the last error if it never went."""
        for attempt in range(self._retries + 1):
            try:
                outcomes = await self._execute([p.command for p in batch])
            except Exception as error:
                if not self._retryable(error) or attempt == self._retries:
                    return error
                log.info("batch retried", size=len(batch), attempt=attempt + 1, error=repr(error))
                await asyncio.sleep(0.005 * (attempt + 1))
                continue
            self._deliver(list(zip(batch, outcomes, strict=True)))
            return None
        raise AssertionError("unreachable")

    def _deliver(self, outcomes: list[tuple[_Pending[C, R], R | BaseException]]) -> None:
        """Hand outcomes to the waiting callers, on their loop, in one hop."""
        assert self._main is not None
        with contextlib.suppress(RuntimeError):  # the server's loop is gone: nobody waits
            self._main.call_soon_threadsafe(_settle_all, outcomes)


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark the outcome seen even if the caller gave up waiting (no "never retrieved" noise)."""
    if not future.cancelled():
        future.exception()


def _settle_all(outcomes: list[tuple[_Pending[Any, Any], Any]]) -> None:
    for pending, outcome in outcomes:
        if pending.future.done():
            continue
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)
