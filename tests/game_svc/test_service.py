"""A real game_svc process: tables, suspend and resume, and Subscribe resuming by sequence."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino_cli.platform import Platform
from casino_kit.errors import details_of


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def game_address(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """game_svc with the upstreams it waits for, as real processes on free ports."""
    data_dir: Path = tmp_path_factory.mktemp("game")
    platform = Platform(
        data_dir=data_dir, packages=("rng_svc", "wallet_svc", "game_svc"), free_ports=True
    )
    await platform.start()
    yield platform.addresses["game_svc"]
    await platform.stop()


def studio_table(name: str = "Roulette 1") -> game_pb2.TableConfig:
    def eur(amount: int) -> common_pb2.Money:
        return common_pb2.Money(amount_minor=amount, currency="EUR")

    return game_pb2.TableConfig(
        name=name,
        game_type=common_pb2.GAME_TYPE_ROULETTE,
        result_source=game_pb2.RESULT_SOURCE_STUDIO,
        studio_id="studio-1",
        betting_window_seconds=15,
        currency="EUR",
        limits=bet_pb2.TableLimits(
            bet_limits=[
                bet_pb2.BetLimit(
                    bet_type=bet_pb2.BET_TYPE_ROULETTE_STRAIGHT,
                    min_stake=eur(100),
                    max_stake=eur(10_000),
                )
            ]
        ),
    )


class Client:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.game = game_service_pb2_grpc.GameServiceStub(channel)
        self.admin = game_service_pb2_grpc.TableAdminServiceStub(channel)

    def key(self) -> str:
        return uuid.uuid4().hex

    async def create(self, config: game_pb2.TableConfig) -> str:
        response = await self.admin.CreateTable(
            game_service_pb2.CreateTableRequest(
                idempotency_key=self.key(), operator_id="op", reason="test", config=config
            )
        )
        return str(response.table_id)

    async def toggle(self, table_id: str, suspend: bool) -> int:
        if suspend:
            request = game_service_pb2.SuspendTableRequest(
                idempotency_key=self.key(), operator_id="op", reason="pause", table_id=table_id
            )
            return int((await self.admin.SuspendTable(request)).sequence)
        resume = game_service_pb2.ResumeTableRequest(
            idempotency_key=self.key(), operator_id="op", reason="go", table_id=table_id
        )
        return int((await self.admin.ResumeTable(resume)).sequence)


@pytest_asyncio.fixture(loop_scope="session")
async def client(game_address: str) -> AsyncIterator[Client]:
    async with grpc.aio.insecure_channel(game_address) as channel:
        yield Client(channel)


async def read(call: grpc.aio.UnaryStreamCall, count: int) -> list[int]:
    sequences = []
    async for response in call:
        sequences.append(response.event.sequence)
        if len(sequences) == count:
            break
    return sequences


@pytest.mark.asyncio(loop_scope="session")
async def test_create_and_get_a_table(client: Client) -> None:
    table_id = await client.create(studio_table())
    table = (await client.game.GetTable(game_service_pb2.GetTableRequest(table_id=table_id))).table
    assert table.summary.name == "Roulette 1"
    assert table.summary.status == common_pb2.TABLE_STATUS_ACTIVE
    assert table.last_sequence == 0
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.game.GetTable(game_service_pb2.GetTableRequest(table_id="missing"))
    assert details_of(raised.value).reason == "TABLE_NOT_FOUND"


@pytest.mark.asyncio(loop_scope="session")
async def test_admin_calls_are_idempotent(client: Client) -> None:
    request = game_service_pb2.CreateTableRequest(
        idempotency_key="same", operator_id="op", reason="r", config=studio_table("Idem")
    )
    first = await client.admin.CreateTable(request)
    assert await client.admin.CreateTable(request) == first
    request.config.name = "Other"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.admin.CreateTable(request)
    assert details_of(raised.value).reason == "IDEMPOTENCY_KEY_REUSED"
    suspend = game_service_pb2.SuspendTableRequest(
        idempotency_key="s", operator_id="op", reason="r", table_id=first.table_id
    )
    assert (await client.admin.SuspendTable(suspend)).sequence == 1
    assert (await client.admin.SuspendTable(suspend)).sequence == 1  # the first answer
    assert await client.toggle(first.table_id, suspend=True) == 0  # already suspended


@pytest.mark.asyncio(loop_scope="session")
async def test_bad_configurations_are_named(client: Client) -> None:
    config = studio_table()
    config.betting_window_seconds = 2
    config.studio_id = ""
    config.limits.bet_limits[0].bet_type = bet_pb2.BET_TYPE_BACCARAT_TIE
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.create(config)
    fields = {v.field for v in details_of(raised.value).violations}
    assert fields == {
        "config.betting_window_seconds",
        "config.studio_id",
        "config.limits.bet_limits[0].bet_type",
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_subscribe_resumes_with_no_gap_and_no_duplicate(client: Client) -> None:
    table_id = await client.create(studio_table("Stream"))
    for n in range(6):
        assert await client.toggle(table_id, suspend=n % 2 == 0) == n + 1
    # A subscriber reads 1-3, disconnects, and resumes from 4 while events keep coming.
    first = client.game.Subscribe(
        game_service_pb2.SubscribeRequest(table_id=table_id, from_sequence=1)
    )
    assert await read(first, 3) == [1, 2, 3]
    first.cancel()
    resumed = client.game.Subscribe(
        game_service_pb2.SubscribeRequest(table_id=table_id, from_sequence=4)
    )
    live = client.game.Subscribe(game_service_pb2.SubscribeRequest(table_id=table_id))
    reading = asyncio.ensure_future(read(resumed, 13))
    await asyncio.sleep(0.5)  # both are reading the log and registered for live events
    for n in range(10):
        await client.toggle(table_id, suspend=n % 2 == 0)
    assert await asyncio.wait_for(reading, 30) == list(range(4, 17))
    assert await asyncio.wait_for(read(live, 10), 30) == list(range(7, 17))
    resumed.cancel()
    live.cancel()
    events = client.game.Subscribe(
        game_service_pb2.SubscribeRequest(table_id=table_id, from_sequence=16)
    )
    async for response in events:
        event = response.event
        assert (event.sequence, event.table_id) == (16, table_id)
        assert event.WhichOneof("payload") == "table_resumed"
        assert event.table_resumed.detail == "go"
        break
    events.cancel()


@pytest.mark.asyncio(loop_scope="session")
async def test_subscribe_to_an_unknown_table(client: Client) -> None:
    call = client.game.Subscribe(game_service_pb2.SubscribeRequest(table_id="missing"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await read(call, 1)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(raised.value).reason == "TABLE_NOT_FOUND"
