"""Seats and presence on both stores; with Redis, two Seating objects are two session nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from casino_kit.errors import FailedPrecondition
from session_svc.store import Store
from session_svc.tables import Seating, SeatingPolicy

GRACE_S = 0.3


def key_of(prefix: str) -> Callable[..., str]:
    return lambda *parts: prefix + ":".join(parts)


def nodes(store: Store, prefix: str) -> tuple[Seating, Seating]:
    policy = SeatingPolicy(grace_s=GRACE_S, presence_s=60)
    return Seating(store, key_of(prefix), policy), Seating(store, key_of(prefix), policy)


async def test_a_seat_is_given_once_across_nodes(store: Store, prefix: str) -> None:
    one, two = nodes(store, prefix)
    await one.join("t", "alice", 3)
    with pytest.raises(FailedPrecondition) as taken:
        await two.join("t", "bob", 3)
    assert taken.value.reason == "SEAT_TAKEN"
    await two.join("t", "alice", 3)  # the holder joining again renews the seat
    await two.join("t", "bob", 0)  # bet behind: no seat, no limit
    assert await one.seat_of("t", "alice") == 3
    assert await one.seat_of("t", "bob") == 0
    assert await one.seat_of("t", "carol") is None
    assert await two.counts("t", 7) == (2, 6)


async def test_concurrent_claims_of_one_seat_have_one_winner(store: Store, prefix: str) -> None:
    one, two = nodes(store, prefix)
    players = [f"p{i}" for i in range(10)]
    outcomes = await asyncio.gather(
        *((one if i % 2 else two).join("t", p, 1) for i, p in enumerate(players)),
        return_exceptions=True,
    )
    winners = [p for p, o in zip(players, outcomes, strict=True) if o is None]
    assert len(winners) == 1
    assert all(isinstance(o, FailedPrecondition) for o in outcomes if o is not None)


async def test_moving_or_leaving_frees_the_seat(store: Store, prefix: str) -> None:
    one, two = nodes(store, prefix)
    await one.join("t", "alice", 1)
    await one.join("t", "alice", 2)  # moved: seat 1 is free again
    await two.join("t", "bob", 1)
    await two.leave("t", "alice")
    await one.join("t", "carol", 2)
    assert await one.seat_of("t", "alice") is None
    assert await two.counts("t", 7) == (2, 5)


async def test_a_seat_lapses_after_the_grace_period_unless_renewed(
    store: Store, prefix: str
) -> None:
    one, two = nodes(store, prefix)
    await one.join("t", "alice", 1)
    await one.join("t", "bob", 2)
    for _ in range(3):
        await asyncio.sleep(GRACE_S / 2)
        await one.touch_all("t", ["alice"])  # alice is watching, bob is gone
    await two.join("t", "carol", 2)
    with pytest.raises(FailedPrecondition):
        await two.join("t", "carol", 1)


async def test_a_full_table_refuses_newcomers_but_not_its_players(
    store: Store, prefix: str
) -> None:
    policy = SeatingPolicy(grace_s=GRACE_S, presence_s=60, capacity=2)
    one, two = Seating(store, key_of(prefix), policy), Seating(store, key_of(prefix), policy)
    await one.join("t", "alice", 1)
    await two.join("t", "bob", 0)
    with pytest.raises(FailedPrecondition) as full:
        await two.join("t", "carol", 0)
    assert full.value.reason == "TABLE_FULL"
    assert await one.seat_of("t", "carol") is None  # nothing changed
    await one.join("t", "bob", 2)  # a player at the table may still move
    await one.leave("t", "alice")
    await two.join("t", "carol", 0)
    assert await one.counts("t", 7) == (2, 6)
