"""Two real game processes on one Redis and one PostgreSQL: one drives a table, the other
takes it over within 10 s when the owner dies, and the dead owner's token is refused."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from typing import cast

import grpc
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from sqlalchemy import select

from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_service_pb2
from casino.wallet.v1 import wallet_pb2, wallet_service_pb2
from casino_cli.demo import table_config
from casino_cli.platform import Platform, ServiceProcess, free_port
from casino_kit.errors import details_of
from casino_kit.sql import create_engine
from game_svc.store import RoundRow, StaleFence, Store, tables
from tests.conftest import REDIS_URL
from tests.game_svc.rounds_helpers import (
    Casino,
    Events,
    eur,
    first_of,
    key,
    on_postgres,
    payload,
    red,
    rng_table,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    async with on_postgres(
        tmp_path_factory.mktemp("takeover"),
        ("rng_svc", "wallet_svc", "game_svc"),
        game_svc={"CASINO_REDIS_URL": REDIS_URL, "CASINO_LEASE_TTL_S": "3"},
    ) as running:
        yield running


async def owner_address(table_id: str) -> str:
    """The address the owner advertises in its lease."""
    client = aioredis.from_url(REDIS_URL)
    try:
        value = await client.get(f"casino:game:lease:{table_id}")
    finally:
        await client.aclose()
    assert value is not None, "nobody holds the table"
    # not decode_responses: the client returns bytes, which redis-py's types cannot tell
    return str(cast(bytes, value).decode())


async def test_the_other_replica_takes_a_dead_owners_table_and_its_token_is_refused(
    platform: Platform,
) -> None:
    first = platform.processes["game_svc"]
    second: ServiceProcess = await platform.spawn("game_svc", port=free_port())
    await second.wait_serving(30)
    try:
        async with (
            grpc.aio.insecure_channel(second.address) as game,
            grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet,
        ):
            casino = Casino(game, wallet)
            alice = await casino.player(10_000)
            table_id = await casino.table(rng_table(name="takeover"))
            address = await owner_address(table_id)
            owner, standby = (first, second) if address == first.address else (second, first)
            assert address == owner.address
            async with (
                grpc.aio.insecure_channel(owner.address) as to_owner,
                grpc.aio.insecure_channel(standby.address) as to_standby,
            ):
                await run_takeover(
                    platform,
                    Casino(to_owner, wallet),
                    Casino(to_standby, wallet),
                    owner,
                    standby,
                    table_id,
                    alice,
                )
    finally:
        await second.terminate()
        if first.process.returncode is not None:  # let the module's platform stop cleanly
            platform.processes.pop("game_svc")


async def run_takeover(
    platform: Platform,
    owner_side: Casino,
    standby_side: Casino,
    owner: ServiceProcess,
    standby: ServiceProcess,
    table_id: str,
    alice: str,
) -> None:
    events = Events(standby_side.game, table_id)  # the standby's log reads what the owner wrote
    try:
        round_id = (await events.wait_for(payload("round_opened"))).round_id
        engine = create_engine(platform.service_env["game_svc"]["CASINO_DATABASE_URL"])
        store = Store(engine)
        async with engine.connect() as connection:
            old_fence = (
                await connection.execute(
                    select(tables.c.fence).where(tables.c.table_id == table_id)
                )
            ).scalar_one()
        placed = await owner_side.place(table_id, round_id, [(alice, red(2_000))])
        assert placed[0].status == bet_pb2.BET_STATUS_ACCEPTED
        # A replica that does not drive the table hands the bets to the one that does.
        forwarded = await standby_side.place(table_id, round_id, [(alice, red(1_000))])
        assert forwarded[0].status == bet_pb2.BET_STATUS_ACCEPTED
        assert await owner_side.balance(alice) == 7_000

        owner.process.send_signal(signal.SIGKILL)
        await owner.process.wait()
        killed_at = time.monotonic()
        voided = await events.wait_for(payload("round_voided", round_id), timeout=15)
        taken_s = time.monotonic() - killed_at
        assert taken_s < 10, f"taken over after {taken_s:.1f} s"
        assert await owner_address(table_id) == standby.address
        assert voided.round_voided.refunded_bet_count == 2
        assert await standby_side.balance(alice) == 10_000
        await events.wait_for(
            lambda e: e.WhichOneof("payload") == "round_opened" and e.round_id != round_id
        )
        # The dead owner's token moves no money and writes no event.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await standby_side.wallet.PlaceStakes(
                wallet_service_pb2.PlaceStakesRequest(
                    idempotency_key=key(),
                    table_id=table_id,
                    round_id=round_id,
                    fencing_token=old_fence,
                    stakes=[wallet_pb2.Stake(bet_id=key(), player_id=alice, amount=eur(100))],
                ),
                timeout=10,
            )
        assert details_of(refused.value).reason == "STALE_FENCING_TOKEN"
        stale = (await store.round(round_id)).record
        with pytest.raises(StaleFence):
            await store.save_round(
                RoundRow(stale, (await store.round(round_id)).closes_at),
                [events.seen[-1]],
                old_fence,
            )
        await engine.dispose()
        await asyncio.sleep(0.5)
        sequences = [e.sequence for e in events.seen]
        assert sequences == list(range(1, len(sequences) + 1))
    finally:
        await events.close()


async def test_a_decision_sent_to_the_other_replica_reaches_the_table_owner(
    platform: Platform,
) -> None:
    first = platform.processes.get("game_svc")
    if first is None:  # the takeover test killed the module's process
        first = platform.processes["game_svc"] = await platform.spawn("game_svc")
        await first.wait_serving(30)
    second: ServiceProcess = await platform.spawn("game_svc", port=free_port())
    await second.wait_serving(30)
    try:
        async with grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet:
            async with grpc.aio.insecure_channel(first.address) as game:
                casino = Casino(game, wallet)
                alice = await casino.player(100_000)
                config = table_config(
                    "forwarded decisions", common_pb2.GAME_TYPE_BLACKJACK, 5, decision_s=10
                )
                table_id = await casino.table(config)
            address = await owner_address(table_id)
            standby = second if address == first.address else first
            async with grpc.aio.insecure_channel(standby.address) as to_standby:
                other = Casino(to_standby, wallet)
                events = Events(other.game, table_id)
                try:
                    await decide_through(other, events, table_id, alice)
                finally:
                    await events.close()
    finally:
        await second.terminate()


async def decide_through(casino: Casino, events: Events, table_id: str, alice: str) -> None:
    """Bet and decide through a replica that does not drive the table."""
    seat = (bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_BLACKJACK_SEAT, seat=1), 1_000)
    for _ in range(6):  # until a round asks alice to decide (a natural asks nothing)
        opened = await events.wait_for(
            lambda e: e.HasField("round_opened") and not events.of(e.round_id, "bets_closed")
        )
        round_id = opened.round_id
        placed = await casino.place(table_id, round_id, [(alice, seat)])
        assert placed[0].status == bet_pb2.BET_STATUS_ACCEPTED
        asked = await events.wait_for(first_of(round_id), timeout=30)
        if asked.HasField("decision_requested"):
            break
        await events.wait_for(payload("round_settled", round_id), timeout=60)
    else:
        pytest.fail("no round asked alice to decide in six rounds")
    answer = await casino.game.SubmitDecision(
        game_service_pb2.SubmitDecisionRequest(
            idempotency_key=key(),
            table_id=table_id,
            round_id=round_id,
            player_id=alice,
            seat=1,
            hand=asked.decision_requested.hand,
            action=bet_pb2.BLACKJACK_ACTION_STAND,
        ),
        timeout=10,
    )
    made = await events.wait_for(lambda e: e.sequence == answer.sequence)
    assert made.decision_made.player_id == alice and not made.decision_made.automatic
