"""Malformed requests to a real service process get INVALID_ARGUMENT naming each field."""

from __future__ import annotations

import grpc
import pytest

from casino.common.v1 import common_pb2
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.platform import Platform
from casino_kit.errors import ErrorDetails, details_of


async def _deposit(platform: Platform, request: wallet_service_pb2.DepositRequest) -> ErrorDetails:
    async with grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as channel:
        stub = wallet_service_pb2_grpc.WalletServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.Deposit(request, timeout=5)
    return details_of(failure.value)


async def test_missing_fields_are_named(platform: Platform) -> None:
    details = await _deposit(
        platform,
        wallet_service_pb2.DepositRequest(
            amount=common_pb2.Money(amount_minor=100, currency="EUR")
        ),
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "INVALID_ARGUMENT" and details.domain == "casino.wallet.v1"
    assert {v.field for v in details.violations} == {"idempotency_key", "player_id"}


async def test_negative_amount_is_named(platform: Platform) -> None:
    details = await _deposit(
        platform,
        wallet_service_pb2.DepositRequest(
            idempotency_key="k-1",
            player_id="p-1",
            amount=common_pb2.Money(amount_minor=-5, currency="EUR"),
        ),
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.violations] == ["amount.amount_minor"]
