"""Bets, decisions and studio events for a table another replica drives go to that replica.

The lease names the owner by the address it advertises; a replica that is not the owner
sends the batch on to it once (a forwarded batch is never forwarded again, so two replicas
that disagree for a moment cannot bounce a batch between them). With TLS, replicas share
the service's certificate, so the owner is checked against ``tls_name``, not its address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino_kit.channels import open_channel, service_config
from casino_kit.tls import TlsSettings

FORWARDED = "x-casino-forwarded"


class Peers:
    def __init__(self, own_address: str, tls: TlsSettings, tls_name: str = "") -> None:
        self.own_address = own_address
        self._tls = tls
        self._options = [("grpc.ssl_target_name_override", tls_name)] if tls_name else []
        self._stubs: dict[str, game_service_pb2_grpc.GameServiceStub] = {}
        self._channels: list[grpc.aio.Channel] = []

    def _stub(self, address: str) -> game_service_pb2_grpc.GameServiceStub:
        stub = self._stubs.get(address)
        if stub is None:
            channel = open_channel(
                address,
                self._tls,
                config=service_config("casino.game.v1"),
                options=self._options,
            )
            self._channels.append(channel)
            stub = self._stubs[address] = game_service_pb2_grpc.GameServiceStub(channel)
        return stub

    async def place(
        self, owner: str, batch: game_service_pb2.PlaceBetsRequest
    ) -> list[game_pb2.BetResult]:
        async def one() -> AsyncIterator[game_service_pb2.PlaceBetsRequest]:
            yield batch

        call = self._stub(owner).PlaceBets(one(), metadata=((FORWARDED, "1"),), timeout=20)
        async for response in call:
            return list(response.results)
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "no answer"
        )

    async def apply(
        self, owner: str, request: game_service_pb2.ApplyStudioEventRequest
    ) -> game_service_pb2.ApplyStudioEventResponse:
        return await self._stub(owner).ApplyStudioEvent(  # type: ignore[no-any-return]
            request, metadata=((FORWARDED, "1"),)
        )

    async def decide(
        self, owner: str, request: game_service_pb2.SubmitDecisionRequest
    ) -> game_service_pb2.SubmitDecisionResponse:
        return await self._stub(owner).SubmitDecision(  # type: ignore[no-any-return]
            request, metadata=((FORWARDED, "1"),)
        )

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
