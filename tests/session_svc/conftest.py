"""Session test fixtures: both store adapters (in-process and the real Redis), test operators."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from session_svc.store import MemoryStore, RedisStore, Store
from tests.conftest import REDIS_URL

STORES = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone, so tests sharing the Redis never collide."""
    return f"test:session:{uuid.uuid4().hex}:"


async def delete_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def drop_connections(name: Callable[[str], bool]) -> int:
    """Close, server side, every Redis connection whose client name ``name`` accepts (what a
    Redis restart or failover does to its clients); how many were closed."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        victims = [c["id"] for c in await client.client_list() if name(c.get("name", ""))]
        for victim in victims:
            await client.client_kill_filter(_id=victim)
        return len(victims)
    finally:
        await client.aclose()


@pytest_asyncio.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Store]:
    """Each store adapter in turn: the same tests must pass on both."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory
        await memory.close()
        return
    shared = RedisStore.from_url(REDIS_URL)
    try:
        yield shared
    finally:
        await shared.close()
        await delete_prefix(prefix)
