"""Two game replicas whose Redis (the table leases) dies or freezes, then comes back: the
owner goes on driving its table and taking bets, the other replica says UNAVAILABLE (at once,
not after a hang) instead of guessing who drives it, and once Redis is back one replica
drives the table and every round ends once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from casino.common.v1 import bet_pb2, table_event_pb2
from casino_cli.platform import Platform, ServiceProcess, free_port
from tests.game_svc.rounds_helpers import Casino, Events, on_postgres, payload, red, rng_table

LEASE_TTL_S = 2.0
ENDS = {"round_result", "round_voided"}
"""A round ends with its result, or voided: once."""


@dataclass
class RedisServer:
    """A Redis of this test's own on loopback, to kill or freeze."""

    port: int
    folder: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.folder),
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = aioredis.from_url(self.url)
        try:
            for _ in range(100):
                with contextlib.suppress(OSError, aioredis.ConnectionError):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
            raise RuntimeError("redis-server did not start")
        finally:
            await client.aclose()

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)  # frozen or not
        await self.process.wait()

    async def fail(self, how: str) -> None:
        """``killed``: connections are refused; ``frozen``: they are open and nothing answers."""
        if how == "killed":
            await self.kill()
        else:
            assert self.process is not None
            self.process.send_signal(signal.SIGSTOP)

    async def recover(self, how: str) -> None:
        """Killed, it starts again empty; frozen, it goes on (its leases expired meanwhile)."""
        if how == "killed":
            await self.start()
        else:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)

    async def holder(self, table_id: str) -> str | None:
        client = aioredis.from_url(self.url, decode_responses=True)
        try:
            value = await client.get(f"casino:game:lease:{table_id}")
        finally:
            await client.aclose()
        return None if value is None else str(value)


@contextlib.asynccontextmanager
async def replicas_on(
    redis: RedisServer, tmp_path: Path
) -> AsyncIterator[tuple[Platform, list[ServiceProcess]]]:
    """RNG, wallet and two game replicas sharing ``redis``."""
    env = {"CASINO_REDIS_URL": redis.url, "CASINO_LEASE_TTL_S": str(LEASE_TTL_S)}
    async with on_postgres(tmp_path, ("rng_svc", "wallet_svc", "game_svc"), game_svc=env) as p:
        second = await p.spawn("game_svc", port=free_port())
        try:
            await second.wait_serving(30)
            yield p, [p.processes["game_svc"], second]
        finally:
            await second.terminate()


def opened_after(seen: int) -> Callable[[table_event_pb2.TableEvent], bool]:
    """A round opened after the first ``seen`` events."""
    return lambda e: e.sequence > seen and e.WhichOneof("payload") == "round_opened"


def result_of_a_round_opened_after(
    events: Events, seen: int
) -> Callable[[table_event_pb2.TableEvent], bool]:
    """The result of a round that opened after the first ``seen`` events."""
    return lambda e: (
        e.WhichOneof("payload") == "round_result"
        and any(opened_after(seen)(o) and o.round_id == e.round_id for o in events.seen)
    )


@pytest.mark.parametrize("how", ["killed", "frozen"])
async def test_a_redis_outage_neither_stops_the_owner_nor_ends_a_round_twice(
    tmp_path: Path, how: str
) -> None:
    redis = RedisServer(free_port(), tmp_path)
    await redis.start()
    try:
        async with replicas_on(redis, tmp_path) as (platform, replicas):
            await _outage(platform, replicas, redis, how)
    finally:
        await redis.kill()


async def _outage(
    platform: Platform, replicas: list[ServiceProcess], redis: RedisServer, how: str
) -> None:
    async with (
        grpc.aio.insecure_channel(replicas[0].address) as first,
        grpc.aio.insecure_channel(replicas[1].address) as second,
        grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet,
    ):
        sides = [Casino(first, wallet), Casino(second, wallet)]
        alice = await sides[0].player(10_000)
        table_id = await sides[0].table(rng_table(name="redis outage"))
        first_owns = await redis.holder(table_id) == replicas[0].address
        owner_side, standby_side = sides if first_owns else sides[::-1]
        events = Events(owner_side.game, table_id)
        try:
            await events.wait_for(payload("round_opened"))
            await redis.fail(how)
            # Past the lease's time to live: nothing in Redis says who drives the table.
            opened = await events.wait_for(opened_after(len(events.seen)), timeout=30)
            await asyncio.sleep(LEASE_TTL_S)

            # The standby cannot know the owner: the bet is refused as retryable, not lost.
            (refused,) = await standby_side.place(table_id, opened.round_id, [(alice, red())])
            assert refused.status == bet_pb2.BET_STATUS_REJECTED
            assert refused.reason == "STORAGE_UNAVAILABLE"
            assert await owner_side.balance(alice) == 10_000
            # The owner goes on: it takes the bet and settles the round.
            (taken,) = await owner_side.place(table_id, opened.round_id, [(alice, red(1_000))])
            assert taken.status == bet_pb2.BET_STATUS_ACCEPTED
            await events.wait_for(payload("round_result", opened.round_id), timeout=30)
            await events.wait_for(payload("round_settled", opened.round_id), timeout=30)

            back = len(events.seen)
            await redis.recover(how)
            # Its lease gone, the owner takes it back and plays on, unless the other replica
            # takes the table first (a new fencing token: the round open then is voided).
            await events.wait_for(result_of_a_round_opened_after(events, back), timeout=60)
            assert await redis.holder(table_id) in {r.address for r in replicas}
            ends = collections.Counter(
                e.round_id for e in events.seen if e.WhichOneof("payload") in ENDS
            )
            assert ends and max(ends.values()) == 1, f"a round ended twice: {ends}"
            # Alice's one bet was taken once and paid at most once (red pays 2x or nothing).
            assert await owner_side.balance(alice) in {9_000, 11_000}
            assert (await owner_side.reconcile()).ok
        finally:
            await events.close()


async def test_a_redis_that_comes_back_empty_costs_the_owner_nothing(tmp_path: Path) -> None:
    """A Redis restarted empty (or a failover to a replica without the keys) has lost every
    lease. The owner takes its lease back and plays on with its fencing token: the round it
    had open is not voided, and the table is not taken anew."""
    redis = RedisServer(free_port(), tmp_path)
    await redis.start()
    env = {"CASINO_REDIS_URL": redis.url, "CASINO_LEASE_TTL_S": str(LEASE_TTL_S)}
    try:
        async with (
            on_postgres(tmp_path, ("rng_svc", "wallet_svc", "game_svc"), game_svc=env) as p,
            grpc.aio.insecure_channel(p.addresses["game_svc"]) as game,
            grpc.aio.insecure_channel(p.addresses["wallet_svc"]) as wallet,
        ):
            casino = Casino(game, wallet)
            alice = await casino.player(10_000)
            table_id = await casino.table(rng_table(name="redis emptied"))
            events = Events(casino.game, table_id)
            try:
                opened = await events.wait_for(payload("round_opened"))
                (taken,) = await casino.place(table_id, opened.round_id, [(alice, red(1_000))])
                assert taken.status == bet_pb2.BET_STATUS_ACCEPTED
                await redis.kill()
                await redis.start()  # empty

                ended = await events.wait_for(
                    lambda e: e.round_id == opened.round_id and e.WhichOneof("payload") in ENDS
                )
                assert ended.WhichOneof("payload") == "round_result", "the open round was voided"
                await events.wait_for(result_of_a_round_opened_after(events, len(events.seen)))
                assert not [e for e in events.seen if e.WhichOneof("payload") == "round_voided"]
                assert await redis.holder(table_id) == p.addresses["game_svc"]
                assert await casino.balance(alice) in {9_000, 11_000}
                assert (await casino.reconcile()).ok
            finally:
                await events.close()
            log = p.processes["game_svc"].log_path.read_text().splitlines()
            assert len([line for line in log if '"table taken"' in line]) == 1
            assert not [line for line in log if '"lease lost"' in line]
    finally:
        await redis.kill()
