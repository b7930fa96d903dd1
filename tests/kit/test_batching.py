"""Adaptive batching: concurrent callers share groups, a lone caller goes at once, a failed
group fails each of its callers and no other."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from casino_kit.batching import Batcher


class Recorder:
    """A ``process`` that doubles numbers, keeps the groups it saw and can be held."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.groups.append(items)
        await self.release.wait()
        if any(item < 0 for item in items):
            raise ValueError("negative")
        return [2 * item for item in items]


async def test_a_lone_item_goes_alone_and_at_once() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder, max_in_flight=1, max_items=10)
    assert await batcher.submit(4) == 8
    assert recorder.groups == [[4]]


async def test_items_arriving_while_a_group_is_under_way_go_together_next() -> None:
    recorder = Recorder()
    recorder.release.clear()
    batcher = Batcher(recorder, max_in_flight=1, max_items=10)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(batcher.submit_many([n, n + 100])) for n in range(2, 5)]
    await asyncio.sleep(0.01)
    assert recorder.groups == [[1]]  # the others wait for the group under way
    recorder.release.set()
    assert await first == 2
    assert await asyncio.gather(*later) == [[4, 204], [6, 206], [8, 208]]
    assert recorder.groups == [[1], [2, 102, 3, 103, 4, 104]]


async def test_groups_hold_at_most_max_items_and_keep_a_call_whole() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder, max_in_flight=1, max_items=3)
    # asyncio.gather returns a list; typeshed types its fixed-arity overloads as a tuple
    results = cast(
        list[list[int]],
        await asyncio.gather(
            batcher.submit_many([1, 2]), batcher.submit_many([3, 4]), batcher.submit_many([5])
        ),
    )
    assert results == [[2, 4], [6, 8], [10]]
    assert recorder.groups == [[1, 2], [3, 4, 5]]


async def test_a_failed_group_fails_its_callers_only() -> None:
    recorder = Recorder()
    recorder.release.clear()
    batcher = Batcher(recorder, max_in_flight=1, max_items=10)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)
    bad = [asyncio.ensure_future(batcher.submit(n)) for n in (2, -3)]
    await asyncio.sleep(0.01)
    recorder.release.set()
    assert await first == 2
    for call in bad:
        with pytest.raises(ValueError):
            await call
    assert await batcher.submit(5) == 10  # the batcher goes on
