"""Both store adapters behave the same: TTLs, set-if-absent, counters, the token bucket."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from casino_cli.platform import free_port
from casino_kit.errors import Unavailable
from session_svc.store import HEALTH_CHECK_S, RedisStore, Store
from tests.conftest import REDIS_URL
from tests.session_svc.conftest import delete_prefix, drop_connections


async def test_get_set_delete(store: Store, prefix: str) -> None:
    assert await store.get(prefix + "a") is None
    await store.set(prefix + "a", "one")
    await store.set(prefix + "b", "two")
    assert await store.get(prefix + "a") == "one"
    assert await store.get_many([prefix + "a", prefix + "missing", prefix + "b"]) == [
        "one",
        None,
        "two",
    ]
    await store.delete(prefix + "a")
    assert await store.get(prefix + "a") is None


async def test_values_expire_after_their_ttl(store: Store, prefix: str) -> None:
    await store.set(prefix + "short", "x", ttl_s=0.1)
    await store.set(prefix + "long", "y", ttl_s=30)
    assert await store.get(prefix + "short") == "x"
    await asyncio.sleep(0.25)
    assert await store.get(prefix + "short") is None
    assert await store.get(prefix + "long") == "y"


async def test_set_if_absent_stores_once(store: Store, prefix: str) -> None:
    key = prefix + "nonce"
    assert await store.set_if_absent(key, "first", ttl_s=0.2)
    assert not await store.set_if_absent(key, "second", ttl_s=0.2)
    assert await store.get(key) == "first"
    await asyncio.sleep(0.35)
    assert await store.set_if_absent(key, "third")
    assert await store.get(key) == "third"


async def test_concurrent_set_if_absent_has_one_winner(store: Store, prefix: str) -> None:
    results = await asyncio.gather(
        *(store.set_if_absent(prefix + "race", str(i), ttl_s=10) for i in range(20))
    )
    assert results.count(True) == 1


async def test_incr_counts_and_sets_ttl_once(store: Store, prefix: str) -> None:
    key = prefix + "counter"
    assert [await store.incr(key, ttl_s=0.3) for _ in range(3)] == [1, 2, 3]
    await asyncio.sleep(0.45)
    assert await store.incr(key, ttl_s=0.3) == 1


async def test_token_bucket_allows_the_burst_then_refuses_with_retry(
    store: Store, prefix: str
) -> None:
    key = prefix + "bucket"
    taken = [await store.take_token(key, rate_per_s=10.0, burst=5) for _ in range(5)]
    assert all(t.allowed for t in taken)
    refused = await store.take_token(key, rate_per_s=10.0, burst=5)
    assert not refused.allowed
    assert 0 < refused.retry_after_ms <= 100
    await asyncio.sleep(refused.retry_after_ms / 1000 + 0.05)
    assert (await store.take_token(key, rate_per_s=10.0, burst=5)).allowed


async def test_token_bucket_is_atomic_under_concurrency(store: Store, prefix: str) -> None:
    results = await asyncio.gather(
        *(store.take_token(prefix + "busy", rate_per_s=0.5, burst=10) for _ in range(40))
    )
    assert sum(r.allowed for r in results) == 10


async def test_buckets_are_per_key(store: Store, prefix: str) -> None:
    assert (await store.take_token(prefix + "p1", rate_per_s=1.0, burst=1)).allowed
    assert not (await store.take_token(prefix + "p1", rate_per_s=1.0, burst=1)).allowed
    assert (await store.take_token(prefix + "p2", rate_per_s=1.0, burst=1)).allowed


async def test_compare_and_set_stores_only_over_the_expected_value(
    store: Store, prefix: str
) -> None:
    key = prefix + "state"
    assert not await store.compare_and_set(key, "old", "new")
    assert await store.compare_and_set(key, None, "v1")
    assert not await store.compare_and_set(key, None, "v2")
    assert not await store.compare_and_set(key, "v0", "v2")
    assert await store.compare_and_set(key, "v1", "v2", ttl_s=0.1)
    assert await store.get(key) == "v2"
    await asyncio.sleep(0.25)
    assert await store.get(key) is None


async def test_concurrent_read_modify_writes_lose_nothing(store: Store, prefix: str) -> None:
    key = prefix + "list"

    async def append(item: str) -> None:
        while True:
            raw = await store.get(key)
            items = [] if raw is None else raw.split(",")
            if await store.compare_and_set(key, raw, ",".join([*items, item])):
                return

    await asyncio.gather(*(append(str(i)) for i in range(20)))
    stored = await store.get(key)
    assert stored is not None and sorted(stored.split(","), key=int) == [str(i) for i in range(20)]


async def test_delete_if_deletes_only_the_expected_value(store: Store, prefix: str) -> None:
    await store.set(prefix + "seat", "alice")
    assert not await store.delete_if(prefix + "seat", "bob")
    assert await store.get(prefix + "seat") == "alice"
    assert await store.delete_if(prefix + "seat", "alice")
    assert await store.get(prefix + "seat") is None


async def test_presence_counts_members_until_their_time(store: Store, prefix: str) -> None:
    now = time.time()
    await store.presence_add(prefix + "players", ["a", "b"], now + 0.2)
    await store.presence_add(prefix + "players", ["a"], now + 60)  # moved, not added twice
    assert await store.presence_count(prefix + "players", now) == 2
    assert await store.presence_count(prefix + "players", now + 1) == 1
    await store.presence_remove(prefix + "players", "a")
    assert await store.presence_count(prefix + "players", now) == 0


async def test_published_messages_reach_every_subscriber(store: Store, prefix: str) -> None:
    channel = prefix + "events"
    streams = [store.subscribe(channel) for _ in range(2)]
    for stream in streams:
        assert await asyncio.wait_for(anext(stream), 5) is None  # subscribed
    reads = [asyncio.ensure_future(anext(s)) for s in streams]
    await store.publish(channel, "hello")
    assert await asyncio.wait_for(asyncio.gather(*reads), 5) == ["hello", "hello"]
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_expire_many_renews_existing_keys_only(store: Store, prefix: str) -> None:
    await store.set(prefix + "a", "1", ttl_s=0.2)
    await store.expire_many([prefix + "a", prefix + "missing"], 30)
    await asyncio.sleep(0.3)
    assert await store.get_many([prefix + "a", prefix + "missing"]) == ["1", None]


async def test_lists_keep_appended_values_in_order_until_their_ttl(
    store: Store, prefix: str
) -> None:
    await store.append(prefix + "l", ["a", "b"], ttl_s=0.3)
    await store.append(prefix + "l", ["c"], ttl_s=0.3)
    await store.append(prefix + "other", ["x"], ttl_s=30)
    assert await store.lists([prefix + "l", prefix + "missing", prefix + "other"]) == [
        ["a", "b", "c"],
        [],
        ["x"],
    ]
    await asyncio.sleep(0.45)
    assert await store.lists([prefix + "l", prefix + "other"]) == [[], ["x"]]


async def test_messages_published_together_arrive_in_order(store: Store, prefix: str) -> None:
    channel = prefix + "ordered"
    stream = store.subscribe(channel)
    assert await asyncio.wait_for(anext(stream), 5) is None  # subscribed
    await store.publish(channel, "one", "two", "three")
    assert await asyncio.wait_for(anext(stream), 5) == "one"
    assert [await asyncio.wait_for(anext(stream), 5) for _ in range(2)] == ["two", "three"]
    await stream.aclose()  # type: ignore[attr-defined]


@pytest.mark.redis
async def test_dropped_connections_are_replaced_and_a_lost_subscription_says_so(
    prefix: str,
) -> None:
    name = f"test-drop-{uuid.uuid4().hex}"
    store = RedisStore.from_url(REDIS_URL, name=name)
    channel = prefix + "events"
    stream = store.subscribe(channel)
    try:
        assert await asyncio.wait_for(anext(stream), 5) is None
        await store.set(prefix + "a", "1")
        assert await drop_connections(lambda n: n == name) == 2  # commands and subscription
        # The subscription is back, and says messages may have been lost meanwhile.
        assert await asyncio.wait_for(anext(stream), 10) is None
        # The commands' connection, dropped while idle, is checked and replaced before it
        # carries a call: nobody sees an error.
        await asyncio.sleep(HEALTH_CHECK_S * 1.2)
        await store.publish(channel, "after")
        assert await asyncio.wait_for(anext(stream), 5) == "after"
        assert await store.get(prefix + "a") == "1"
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await store.close()
        await delete_prefix(prefix)


async def test_an_unreachable_redis_is_unavailable_not_an_internal_error() -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(Unavailable) as refused:
            await store.get("anything")
        assert refused.value.reason == "STORAGE_UNAVAILABLE"
    finally:
        await store.close()
