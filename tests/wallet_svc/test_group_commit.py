"""Group commit on its own: batching, isolation of bad requests, retries, dedupe, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import cast

import pytest
import pytest_asyncio

from wallet_svc.group_commit import GroupCommitter, Stopped


class Refused(Exception):
    """A request-level refusal: only that request fails."""


class DatabaseDown(Exception):
    """A transaction-level failure: the whole batch is retried."""


class Ledger:
    """A fake ``execute`` that records what ran together, on which thread."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.committed: list[str] = []
        self.threads: set[str] = set()
        self.down_for = 0
        self.running = 0
        self.most_at_once = 0

    async def execute(self, commands: Sequence[str]) -> list[str | BaseException]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(commands))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.002)  # the commit
        finally:
            self.running -= 1
        if self.down_for > 0:
            self.down_for -= 1
            raise DatabaseDown("connection lost")
        if any(c.startswith("poison") for c in commands) and len(commands) > 1:
            raise DatabaseDown("constraint violated somewhere in the batch")
        if any(c.startswith("poison") for c in commands):
            raise ValueError("this request breaks the transaction")
        outcomes: list[str | BaseException] = []
        for command in commands:
            if command.startswith("bad"):
                outcomes.append(Refused(command))
            else:
                self.committed.append(command)
                outcomes.append(f"ok:{command}")
        return outcomes


@pytest_asyncio.fixture(params=[1, 2], ids=["one-lane", "two-lanes"])
async def ledger(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Ledger, GroupCommitter[str, str]]]:
    fake = Ledger()
    committer: GroupCommitter[str, str] = GroupCommitter(
        fake.execute,
        retryable=lambda e: isinstance(e, DatabaseDown),
        retries=2,
        lanes=request.param,
    )
    await committer.start()
    yield fake, committer
    await committer.stop()


async def test_concurrent_requests_share_batches(
    ledger: tuple[Ledger, GroupCommitter[str, str]],
) -> None:
    fake, committer = ledger
    submitted = []
    for wave in range(20):  # arriving while earlier batches commit
        submitted += [
            asyncio.ensure_future(committer.submit(f"c{wave * 10 + i}")) for i in range(10)
        ]
        await asyncio.sleep(0.001)
    results = await asyncio.gather(*submitted)
    assert results == [f"ok:c{i}" for i in range(200)]
    assert sorted(fake.committed) == sorted(f"c{i}" for i in range(200))
    assert len(fake.batches) < 50
    assert fake.threads == {"group-commit"}
    assert fake.most_at_once == committer._lanes  # while one batch commits, the next runs


async def test_a_retry_right_after_its_first_attempt_runs_without_waiting(
    ledger: tuple[Ledger, GroupCommitter[str, str]],
) -> None:
    """The first attempt's future is done, but the callback that forgets it has not run yet
    (the retry came in the same loop turn): the retry must go ahead, not spin on it."""
    _, committer = ledger
    first: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    first.set_result("ok:k-first")
    committer._inflight["k"] = first  # the state between the answer and its clean-up
    retry = await asyncio.wait_for(committer.submit("k-retry", dedupe="k"), 2)
    assert retry == "ok:k-retry"
    await asyncio.sleep(0)
    assert "k" not in committer._inflight


async def test_a_refused_request_does_not_fail_its_neighbours(
    ledger: tuple[Ledger, GroupCommitter[str, str]],
) -> None:
    _, committer = ledger
    outcomes = await asyncio.gather(
        *(committer.submit(c) for c in ("a", "bad-1", "b")), return_exceptions=True
    )
    assert outcomes[0] == "ok:a" and outcomes[2] == "ok:b"
    assert isinstance(outcomes[1], Refused)


async def test_a_request_that_breaks_the_transaction_fails_alone(
    ledger: tuple[Ledger, GroupCommitter[str, str]],
) -> None:
    fake, committer = ledger
    commands = [f"n{i}" for i in range(10)] + ["poison"]
    outcomes = await asyncio.gather(
        *(committer.submit(c) for c in commands), return_exceptions=True
    )
    assert outcomes[:10] == [f"ok:n{i}" for i in range(10)]
    assert isinstance(outcomes[10], ValueError)
    assert sorted(fake.committed) == sorted(commands[:10])


async def test_a_transient_failure_retries_the_batch(
    ledger: tuple[Ledger, GroupCommitter[str, str]],
) -> None:
    fake, committer = ledger
    fake.down_for = 2
    # asyncio.gather returns a list; typeshed types its fixed-arity overloads as a tuple
    both = cast(list[str], await asyncio.gather(committer.submit("x"), committer.submit("y")))
    assert both == ["ok:x", "ok:y"]
    fake.down_for = 10
    with pytest.raises(DatabaseDown):
        await committer.submit("z")
    assert "z" not in fake.committed


async def test_the_same_key_never_shares_a_batch(
    ledger: tuple[Ledger, GroupCommitter[str, str]],
) -> None:
    fake, committer = ledger
    await asyncio.gather(
        committer.submit("k-first", dedupe="k"),
        committer.submit("k-retry", dedupe="k"),
        committer.submit("other"),
    )
    for batch in fake.batches:
        assert not {"k-first", "k-retry"} <= set(batch)
    assert fake.committed.index("k-first") < fake.committed.index("k-retry")


@pytest.mark.parametrize("lanes", [1, 2])
async def test_stop_finishes_what_was_queued_and_refuses_the_rest(lanes: int) -> None:
    fake = Ledger()
    committer: GroupCommitter[str, str] = GroupCommitter(fake.execute, lanes=lanes)
    await committer.start()
    running = [asyncio.ensure_future(committer.submit(f"q{i}")) for i in range(20)]
    await asyncio.sleep(0)
    await committer.stop()
    assert [await r for r in running] == [f"ok:q{i}" for i in range(20)]
    with pytest.raises(Stopped):
        await committer.submit("late")
    await committer.stop()


async def test_a_failing_start_is_reported() -> None:
    async def broken() -> None:
        raise ConnectionRefusedError("no database")

    committer: GroupCommitter[str, str] = GroupCommitter(Ledger().execute, on_start=broken)
    with pytest.raises(ConnectionRefusedError):
        await committer.start()
