"""The wallet application: mutating calls go through group commit, reads go to the store.

A mutating call becomes a Job: its idempotency key and request fingerprint, the domain
command, and how to render the result as response bytes. A batch of jobs runs in one
transaction: stored answers are replayed (or the key is refused if the payload differs), the
rest are evaluated by the engine, and every new answer is stored beside its effect, so
"committed" and "answered" are the same event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from casino_kit.errors import DomainError
from casino_kit.sql import create_engine
from wallet_svc import pgbatch, reports
from wallet_svc.commands import Command, Result
from wallet_svc.engine import Engine, StaleRead
from wallet_svc.group_commit import GroupCommitter
from wallet_svc.idempotency import Answer, Stored, replay
from wallet_svc.ids import IdGenerator
from wallet_svc.limits import Block, Window, window
from wallet_svc.store import Store


@dataclass(frozen=True, slots=True)
class Job:
    """One mutating call, ready to run in a batch."""

    method: str
    key: str
    fingerprint: bytes
    command: Command
    render: Callable[[Result], bytes]


def now_us() -> int:
    return time.time_ns() // 1000


class Wallet:
    """The wallet's use cases over one store."""

    def __init__(
        self,
        url: str,
        *,
        zone: ZoneInfo,
        cooling_s: float,
        window_s: float,
        max_batch: int,
        writers: int = 1,
        pool_size: int = 10,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        self.url = url
        self.store = Store(create_engine(url, pool_size=pool_size))
        """Reads, on the server's loop."""
        self.writers = writers if self.store.postgres else 1  # SQLite has one write lock
        self.writer: Store | None = None
        """Batches, on the group committer's own loop (connections belong to one loop)."""
        self.zone = zone
        self.cooling_us = int(cooling_s * 1_000_000)
        self.clock_us = clock_us
        self.new_id = IdGenerator()
        self.committer: GroupCommitter[Job, Answer] = GroupCommitter(
            self._execute,
            window_s=window_s,
            max_batch=max_batch,
            lanes=self.writers,
            retryable=lambda error: isinstance(error, DBAPIError | StaleRead | pgbatch.DriverError),
            on_start=self._open_writer,
            on_stop=self._close_writer,
        )
        self._window: Window | None = None

    async def start(self) -> None:
        await self.store.migrate()
        await self.committer.start()

    async def stop(self) -> None:
        await self.committer.stop()
        await self.store.close()

    async def _open_writer(self) -> None:
        self.writer = Store(create_engine(self.url, pool_size=self.writers))

    async def _close_writer(self) -> None:
        if self.writer is not None:
            await self.writer.close()

    def window(self, at_us: int) -> Window:
        """The current limit periods (cached until the day ends)."""
        current = self._window
        if current is None or not current.contains(at_us):
            current = self._window = window(at_us, self.zone)
        return current

    async def submit(self, job: Job) -> Answer:
        """Run a mutating call; the answer is committed when this returns."""
        return await self.committer.submit(job, dedupe=(job.method, job.key))

    async def _execute(self, jobs: Sequence[Job]) -> list[Answer | BaseException]:
        now = self.clock_us()
        current = self.window(now)
        outcomes: list[Answer | BaseException | None] = [None] * len(jobs)
        store = self.writer
        assert store is not None
        async with store.writing() as conn:
            stored, state = await store.load(
                conn, [j.key for j in jobs], [j.command for j in jobs], current
            )
            engine = Engine(
                state, now_us=now, window=current, cooling_us=self.cooling_us, new_id=self.new_id
            )
            for index, job in enumerate(jobs):
                first = stored.get((job.method, job.key))
                if first is not None:  # a repeat: its first answer, or the key was reused
                    try:
                        outcomes[index] = replay(first, job.method, job.fingerprint)
                    except DomainError as error:
                        outcomes[index] = error
                    continue
                try:
                    answer = Answer(True, job.render(engine.run(job.command)))
                except DomainError as error:
                    answer = Answer.of_error(error)
                state.stored.append(Stored(job.method, job.key, job.fingerprint, answer))
                outcomes[index] = answer
            await store.write(conn, state, now)
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    # --- reads --------------------------------------------------------------------------------
    async def balance(self, player_id: str, currency: str) -> reports.Balance:
        return await reports.balance(self.store, player_id, currency)

    async def statement(
        self,
        player_id: str,
        currency: str,
        *,
        start_us: int | None,
        end_us: int | None,
        page_size: int,
        before_id: int | None,
    ) -> tuple[int, list[reports.Entry], bool]:
        return await reports.statement(
            self.store,
            player_id,
            currency,
            start_us=start_us,
            end_us=end_us,
            page_size=page_size,
            before_id=before_id,
        )

    async def limits(
        self, player_id: str, currency: str
    ) -> tuple[int, list[reports.LimitView], Block | None]:
        now = self.clock_us()
        views, block = await reports.limits(self.store, player_id, currency, now, self.window(now))
        return now, views, block

    async def reconcile(
        self, currency: str | None, start_us: int | None, end_us: int | None
    ) -> tuple[int, list[reports.CurrencyReport]]:
        now = self.clock_us()
        end = end_us if end_us is not None else now
        start = start_us if start_us is not None else end - 7 * reports.US_PER_DAY
        start -= start % reports.US_PER_DAY
        return now, await reports.reconcile(self.store, currency, start, end)
