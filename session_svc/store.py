"""Fast shared state for sessions: one small async interface, a Redis and an in-process adapter.

Sessions, launch-token nonces, responsible-gaming state, rate-limit buckets, table presence
and seats live here, and personal events travel through its pub/sub. With Redis every session
process of a deployment shares them; the in-process store is the embedded default for a single
node. Both adapters pass the same tests, so the domain code cannot tell them apart. Values are
strings (JSON written by the callers); every key can carry a TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, ResponseError

from casino_kit.batching import Batcher
from casino_kit.logs import Throttle, get_logger
from casino_kit.redis_errors import LOST, unreachable_is_unavailable

MAX_REDIS_CONNECTIONS = 64
MAX_PIPELINE_CALLERS = 500
"""Callers whose commands share one pipeline, at most."""
HEALTH_CHECK_S = 1.0
"""A connection idle this long is checked (PING) before use: one Redis dropped while it was
idle (a restart, a failover) is replaced before a player's call is sent on it."""
RESUBSCRIBE_S = 0.5
"""Wait before subscribing again after a subscription was lost."""

log = get_logger(__name__)


@dataclass(frozen=True)
class BucketResult:
    """The answer of a token-bucket take: allowed or not, and when a token is next free."""

    allowed: bool
    retry_after_ms: int


class Store(Protocol):
    """What the session service needs from its shared state."""

    async def get(self, key: str) -> str | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]: ...

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: str, ttl_s: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True when this call stored it."""
        ...

    async def compare_and_set(
        self, key: str, expected: str | None, value: str, ttl_s: float | None = None
    ) -> bool:
        """Store ``value`` only if the current value is ``expected`` (None: absent); True when
        stored. Read-modify-write without locks: a writer that lost the race reads again."""
        ...

    async def delete(self, key: str) -> None: ...

    async def delete_if(self, key: str, expected: str) -> bool:
        """Delete ``key`` only while its value is ``expected``; True when deleted."""
        ...

    async def incr(self, key: str, ttl_s: float | None = None) -> int:
        """Add one to an integer counter (created at 0); the TTL is set when it is created."""
        ...

    async def take_token(
        self, key: str, rate_per_s: float, burst: int, cost: int = 1
    ) -> BucketResult:
        """Atomically take ``cost`` tokens from a bucket refilled at ``rate_per_s``, capped at
        ``burst``."""
        ...

    async def append(self, key: str, values: Sequence[str], ttl_s: float) -> None:
        """Add ``values`` at the end of the list ``key``, whose TTL becomes ``ttl_s``."""
        ...

    async def lists(self, keys: Sequence[str]) -> list[list[str]]:
        """The list of each key (empty when absent), in one round trip."""
        ...

    async def presence_add(self, key: str, members: Sequence[str], until: float) -> None:
        """Put ``members`` in the set ``key`` until the wall time ``until`` (moved by a later
        call)."""
        ...

    async def expire_many(self, keys: Sequence[str], ttl_s: float) -> None:
        """Give each existing key of ``keys`` a new TTL, in one round trip."""
        ...

    async def presence_remove(self, key: str, member: str) -> None: ...

    async def presence_count(self, key: str, now: float) -> int:
        """How many members of ``key`` are present at ``now``; expired ones are dropped."""
        ...

    async def publish(self, channel: str, *messages: str) -> None:
        """Send ``messages``, in order, to every current subscriber of ``channel``, on every
        node."""
        ...

    def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        """The messages of ``channel`` from now on, until the iterator is closed.

        ``None`` comes first, once the subscription is in place, and again whenever it was
        lost and is back: messages published in between are gone, and only the subscriber
        knows how to make up for them.
        """
        ...

    async def close(self) -> None: ...


def _ttl_ms(ttl_s: float | None) -> int | None:
    return None if ttl_s is None else max(1, math.ceil(ttl_s * 1000))


@functools.cache
def _sha(script: str) -> str:
    """The hash Redis knows a loaded script by."""
    return hashlib.sha1(script.encode()).hexdigest()


class MemoryStore:
    """The in-process store: one node, no persistence; expiry checked on read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[str, float | None]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._sets: dict[str, dict[str, float]] = {}
        self._lists: dict[str, tuple[list[str], float]] = {}
        self._channels: dict[str, set[asyncio.Queue[str]]] = {}
        self._writes = 0

    def _now(self) -> float:
        return self._clock()

    def _live(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._now():
            del self._data[key]
            return None
        return value

    def _put(self, key: str, value: str, ttl_s: float | None) -> None:
        expires = None if ttl_s is None else self._now() + (_ttl_ms(ttl_s) or 0) / 1000
        self._data[key] = (value, expires)
        self._writes += 1
        if self._writes % 4096 == 0:
            self._sweep()

    def _sweep(self) -> None:
        """Forget expired keys now and then, so a long-running node does not grow forever."""
        now = self._now()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]
        for key in [k for k, (_, exp) in self._lists.items() if exp <= now]:
            del self._lists[key]

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [self._live(k) for k in keys]

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        self._put(key, value, ttl_s)

    async def set_if_absent(self, key: str, value: str, ttl_s: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl_s)
        return True

    async def compare_and_set(
        self, key: str, expected: str | None, value: str, ttl_s: float | None = None
    ) -> bool:
        if self._live(key) != expected:
            return False
        self._put(key, value, ttl_s)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)
        self._buckets.pop(key, None)
        self._lists.pop(key, None)

    async def delete_if(self, key: str, expected: str) -> bool:
        if self._live(key) != expected:
            return False
        del self._data[key]
        return True

    async def incr(self, key: str, ttl_s: float | None = None) -> int:
        current = self._live(key)
        if current is None:
            self._put(key, "1", ttl_s)
            return 1
        value = int(current) + 1
        self._data[key] = (str(value), self._data[key][1])
        return value

    async def take_token(
        self, key: str, rate_per_s: float, burst: int, cost: int = 1
    ) -> BucketResult:
        now = self._now()
        tokens, stamp = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - stamp) * rate_per_s)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return BucketResult(True, 0)
        self._buckets[key] = (tokens, now)
        return BucketResult(False, math.ceil((cost - tokens) / rate_per_s * 1000))

    async def append(self, key: str, values: Sequence[str], ttl_s: float) -> None:
        kept = self._list(key)
        kept.extend(values)
        self._lists[key] = (kept, self._now() + ttl_s)

    def _list(self, key: str) -> list[str]:
        values, expires = self._lists.get(key, ([], 0.0))
        if expires <= self._now():
            self._lists.pop(key, None)
            return []
        return values

    async def lists(self, keys: Sequence[str]) -> list[list[str]]:
        return [list(self._list(key)) for key in keys]

    async def presence_add(self, key: str, members: Sequence[str], until: float) -> None:
        present = self._sets.setdefault(key, {})
        for member in members:
            present[member] = until

    async def expire_many(self, keys: Sequence[str], ttl_s: float) -> None:
        for key in keys:
            value = self._live(key)
            if value is not None:
                self._put(key, value, ttl_s)

    async def presence_remove(self, key: str, member: str) -> None:
        self._sets.get(key, {}).pop(member, None)

    async def presence_count(self, key: str, now: float) -> int:
        members = self._sets.get(key, {})
        for gone in [m for m, until in members.items() if until <= now]:
            del members[gone]
        return len(members)

    async def publish(self, channel: str, *messages: str) -> None:
        for queue in self._channels.get(channel, ()):
            for message in messages:
                queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._channels.setdefault(channel, set()).add(queue)
        try:
            yield None
            while True:
                yield await queue.get()
        finally:
            self._channels[channel].discard(queue)

    async def close(self) -> None:
        await asyncio.sleep(0)


# KEYS[1] bucket; ARGV: rate per second, burst, cost. Time comes from the Redis server, so
# every session process shares one clock. State: tokens and the time of the last update (ms).
_TAKE_TOKEN = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, retry}
"""

# KEYS[1] counter; ARGV[1] TTL in ms or 0: INCR and set the TTL only when the key is new.
_INCR = """
local value = redis.call('INCR', KEYS[1])
if value == 1 and tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return value
"""


# KEYS[1]; ARGV: "1" when a value is expected (else the key must be absent), the expected
# value, the new value, TTL in ms or 0.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
local matches
if ARGV[1] == '1' then matches = (current == ARGV[2]) else matches = (current == false) end
if not matches then return 0 end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
"""


# KEYS[1]; ARGV[1] the expected value.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


Commands = Callable[[Pipeline], object]
"""Puts one caller's commands on a pipeline."""


class _Line:
    """One connection that carries the batched commands of every caller, a pipeline at a
    time (so this process's commands reach Redis in the order they were issued)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._connection: Connection | None = None

    async def send(self, callers: list[Commands]) -> list[list[Any]]:
        """The commands of many callers in one round trip; each gets its replies (errors
        included, as exceptions)."""
        recorder = self._client.pipeline(transaction=False)  # builds commands, sends nothing
        spans = []
        for commands in callers:
            first = len(recorder.command_stack)
            commands(recorder)
            spans.append((first, len(recorder.command_stack)))
        stack = recorder.command_stack
        if self._connection is None:
            pool = self._client.connection_pool
            self._connection = cast(Connection, await pool.get_connection())  # type: ignore[no-untyped-call]
        connection = self._connection
        replies: list[Any] = []
        try:
            await connection.send_packed_command(
                connection.pack_commands([args for args, _ in stack])
            )
            for args, options in stack:
                try:
                    replies.append(
                        await self._client.parse_response(connection, args[0], **options)
                    )
                except ResponseError as error:
                    replies.append(error)
        except BaseException:
            # A reply not read leaves the connection out of step: start the next one afresh.
            await connection.disconnect()
            raise
        return [replies[first:last] for first, last in spans]

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()


class RedisStore:
    """The shared store on Redis; atomic operations are Lua scripts run on the server, and
    the commands of concurrent calls share pipelines."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        # Commands queue while a round trip is under way and leave together in the next: a
        # thousand players calling at once cost a few pipelines, each a fraction of the CPU
        # (and none of the connection-pool waits) of a thousand single commands.
        self._line = _Line(client)
        self._batcher: Batcher[Commands, list[Any]] = Batcher(
            self._line.send,
            max_in_flight=1,
            max_items=MAX_PIPELINE_CALLERS,
        )

    @classmethod
    def from_url(cls, url: str, name: str = "") -> RedisStore:
        """``name`` is what Redis lists this process's connections as (``CLIENT LIST``);
        by default ``session_svc:<host>:<pid>``."""
        # Calls wait for a free connection rather than fail: a burst of players must queue,
        # not open thousands of connections or see errors.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=MAX_REDIS_CONNECTIONS,
            timeout=10,
            health_check_interval=HEALTH_CHECK_S,
            retry=Retry(NoBackoff(), 1),  # a failed check reconnects once
            client_name=name or f"session_svc:{socket.gethostname()}:{os.getpid()}",
        )
        return cls(aioredis.Redis.from_pool(pool))

    async def _run(self, commands: Commands) -> list[Any]:
        """The replies of ``commands``, sent with other callers' commands; an error reply
        raises, an unreachable Redis is UNAVAILABLE (the caller may retry)."""
        with unreachable_is_unavailable("the session store"):
            replies = await self._batcher.submit(commands)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _one(self, command: Commands) -> Any:
        (reply,) = await self._run(command)
        return reply

    async def _script(
        self, script: str, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        """Run a Lua script by its hash; the first run on a Redis that lacks it sends it."""
        try:
            return await self._one(lambda p: p.evalsha(_sha(script), len(keys), *keys, *args))
        except NoScriptError:
            return await self._one(lambda p: p.eval(script, len(keys), *keys, *args))

    async def get(self, key: str) -> str | None:
        value = await self._one(lambda p: p.get(key))
        return None if value is None else str(value)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        values = await self._one(lambda p: p.mget(list(keys)))
        return [None if v is None else str(v) for v in values]

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        await self._one(lambda p: p.set(key, value, px=_ttl_ms(ttl_s)))

    async def set_if_absent(self, key: str, value: str, ttl_s: float | None = None) -> bool:
        return bool(await self._one(lambda p: p.set(key, value, px=_ttl_ms(ttl_s), nx=True)))

    async def compare_and_set(
        self, key: str, expected: str | None, value: str, ttl_s: float | None = None
    ) -> bool:
        flag = "0" if expected is None else "1"
        args: list[str | int | float] = [flag, expected or "", value, _ttl_ms(ttl_s) or 0]
        return bool(int(await self._script(_COMPARE_AND_SET, [key], args)))

    async def delete(self, key: str) -> None:
        await self._one(lambda p: p.delete(key))

    async def delete_if(self, key: str, expected: str) -> bool:
        return bool(int(await self._script(_DELETE_IF, [key], [expected])))

    async def incr(self, key: str, ttl_s: float | None = None) -> int:
        return int(await self._script(_INCR, [key], [_ttl_ms(ttl_s) or 0]))

    async def take_token(
        self, key: str, rate_per_s: float, burst: int, cost: int = 1
    ) -> BucketResult:
        allowed, retry = await self._script(_TAKE_TOKEN, [key], [rate_per_s, burst, cost])
        return BucketResult(bool(int(allowed)), int(retry))

    async def append(self, key: str, values: Sequence[str], ttl_s: float) -> None:
        if values:
            await self._run(lambda p: (p.rpush(key, *values), p.pexpire(key, _ttl_ms(ttl_s) or 1)))

    async def lists(self, keys: Sequence[str]) -> list[list[str]]:
        return [
            [str(v) for v in values]
            for values in await self._run(lambda p: [p.lrange(key, 0, -1) for key in keys])
        ]

    async def presence_add(self, key: str, members: Sequence[str], until: float) -> None:
        if members:
            await self._one(lambda p: p.zadd(key, dict.fromkeys(members, until)))

    async def expire_many(self, keys: Sequence[str], ttl_s: float) -> None:
        if keys:
            await self._run(lambda p: [p.pexpire(key, _ttl_ms(ttl_s) or 1) for key in keys])

    async def presence_remove(self, key: str, member: str) -> None:
        await self._one(lambda p: p.zrem(key, member))

    async def presence_count(self, key: str, now: float) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            _, count = await pipe.execute()
        return int(count)

    async def publish(self, channel: str, *messages: str) -> None:
        await self._run(lambda p: [p.publish(channel, message) for message in messages])

    async def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        lost = Throttle(every_s=10.0)  # a long outage retries twice a second per table
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                # redis-py would reconnect and resubscribe silently, hiding the gap.
                pubsub.connection.retry = Retry(NoBackoff(), 0)  # type: ignore[attr-defined]
                yield None
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        yield str(message["data"])
            except LOST as error:
                if (held := lost.passes()) is not None:
                    log.warning(
                        "subscription lost; subscribing again",
                        channel=channel,
                        error=str(error),
                        not_logged_since_last=held,
                    )
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.unsubscribe(channel)
                await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_S)

    async def close(self) -> None:
        await self._line.close()
        await self._redis.aclose()


def open_store(redis_url: str) -> Store:
    """Redis when a URL is configured, else the in-process store (one node only)."""
    return RedisStore.from_url(redis_url) if redis_url else MemoryStore()
