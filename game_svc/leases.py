"""Table ownership leases: exactly one replica drives a table at a time.

With Redis, a lease is a key holding the owner's id with a time to live that the owner
renews; when the owner dies the key expires and another replica takes the table. A lease
only says who should drive; what stops a deposed owner from writing is the fencing token
(``Store.take_fence``) that the wallet and the event log check. Without Redis (one node),
this process owns every table.

While Redis cannot be reached, an owner goes on driving its tables (the fencing token, not
the lease, keeps a deposed owner out), and a lookup of another replica's table is
UNAVAILABLE: the caller retries, and may reach the owner itself.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis

from casino_kit.redis_errors import unreachable_is_unavailable

STORE = "the table leases"
"""What an unreachable Redis is called in errors and logs."""

# Renew a lease this owner holds, or one that is gone: expired while the owner was paused, or
# lost with a Redis that came back empty. Nobody drives the table then, so the owner goes on
# rather than void its open round; should another replica have taken the table and let go of
# it meanwhile, that replica's newer fencing token refuses this owner's writes. A lease held
# by another replica is not renewed: its owner drives the table.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Release only a lease this owner still holds.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leases(Protocol):
    async def holder(self, table_id: str) -> str | None:
        """The owner's advertised address, if anyone holds the table."""
        ...

    async def acquire(self, table_id: str) -> bool: ...
    async def renew(self, table_id: str) -> bool: ...
    async def release(self, table_id: str) -> None: ...
    async def close(self) -> None: ...


class LocalLeases:
    """One node: every table is ours."""

    async def holder(self, table_id: str) -> str | None:
        return None

    async def acquire(self, table_id: str) -> bool:
        return True

    async def renew(self, table_id: str) -> bool:
        return True

    async def release(self, table_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisLeases:
    def __init__(self, url: str, owner: str, ttl_s: float, prefix: str = "casino:game:lease:"):
        """``owner`` is this replica's advertised address: where other replicas send bets."""
        # A call waits a quarter of a lease at most: a Redis that hangs must neither hold a
        # bet that asks who drives a table nor stall the renewals past the lease.
        timeout_s = ttl_s / 4
        self._redis = aioredis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._owner = owner
        self._ttl_ms = int(ttl_s * 1000)
        self._prefix = prefix

    async def holder(self, table_id: str) -> str | None:
        with unreachable_is_unavailable(STORE):
            value = await self._redis.get(self._prefix + table_id)
        return None if value is None else str(value)

    async def acquire(self, table_id: str) -> bool:
        key = self._prefix + table_id
        with unreachable_is_unavailable(STORE):
            return bool(await self._redis.set(key, self._owner, nx=True, px=self._ttl_ms))

    async def renew(self, table_id: str) -> bool:
        key = self._prefix + table_id
        with unreachable_is_unavailable(STORE):
            renewed = await self._redis.eval(_RENEW, 1, key, self._owner, self._ttl_ms)
        return bool(renewed)

    async def release(self, table_id: str) -> None:
        with unreachable_is_unavailable(STORE):
            await self._redis.eval(_RELEASE, 1, self._prefix + table_id, self._owner)

    async def close(self) -> None:
        await self._redis.aclose()
