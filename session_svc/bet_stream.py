"""Bets to game_svc in batches: one PlaceBets stream per process, shared by every player call.

The bets of concurrent calls for the same round leave as one batch (up to ``max_batch``
bets): while ``BATCHES_IN_FLIGHT`` batches of a round are at the game, new bets wait and
leave together in the next (see casino_kit.batching), so a thousand players betting at once
cost the game and the wallet a few calls, not a thousand, and a lone bet leaves at once.
Answers come back on the stream in any order and are matched by batch id. If the stream
breaks, the calls waiting on it fail with UNAVAILABLE: a retry is safe, as bets are
idempotent by bet id all the way to the wallet.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import grpc

from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino_kit.batching import Batcher
from casino_kit.errors import Unavailable
from casino_kit.logs import get_logger

log = get_logger(__name__)

BATCHES_IN_FLIGHT = 1
"""Batches of one round at the game at once: one being staked while the next gathers."""


class GameBets:
    def __init__(
        self, game: game_service_pb2_grpc.GameServiceStub, *, max_batch: int = 1000
    ) -> None:
        self._game = game
        self._max_batch = max_batch
        self._lanes: dict[str, tuple[str, Batcher[game_pb2.Bet, game_pb2.BetResult]]] = {}
        """table id -> (its newest round id, that round's batcher)."""
        self._sent: dict[str, asyncio.Future[list[game_pb2.BetResult]]] = {}
        self._outbox: asyncio.Queue[game_service_pb2.PlaceBetsRequest | None] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def place(
        self, table_id: str, round_id: str, bets: list[game_pb2.Bet]
    ) -> list[game_pb2.BetResult]:
        """The game's result for each of ``bets``, in order."""
        return await self._lane(table_id, round_id).submit_many(bets)

    def _lane(self, table_id: str, round_id: str) -> Batcher[game_pb2.Bet, game_pb2.BetResult]:
        """The round's batcher; a table's rounds follow one another, so a new round id
        replaces the old one's (whose batches under way still finish)."""
        lane = self._lanes.get(table_id)
        if lane is not None and lane[0] == round_id:
            return lane[1]
        batcher: Batcher[game_pb2.Bet, game_pb2.BetResult] = Batcher(
            lambda bets: self._send(table_id, round_id, bets),
            max_in_flight=BATCHES_IN_FLIGHT,
            max_items=self._max_batch,
        )
        self._lanes[table_id] = (round_id, batcher)
        return batcher

    async def _send(
        self, table_id: str, round_id: str, bets: list[game_pb2.Bet]
    ) -> list[game_pb2.BetResult]:
        if self._outbox is None or self._reader is None or self._reader.done():
            self._connect()
        batch_id = uuid.uuid4().hex
        answer: asyncio.Future[list[game_pb2.BetResult]] = (
            asyncio.get_running_loop().create_future()
        )
        self._sent[batch_id] = answer
        assert self._outbox is not None
        self._outbox.put_nowait(
            game_service_pb2.PlaceBetsRequest(
                idempotency_key=batch_id,
                batch_id=batch_id,
                table_id=table_id,
                round_id=round_id,
                bets=bets,
            )
        )
        try:
            return await answer
        finally:
            self._sent.pop(batch_id, None)

    def _connect(self) -> None:
        outbox: asyncio.Queue[game_service_pb2.PlaceBetsRequest | None] = asyncio.Queue()
        self._outbox = outbox

        async def requests() -> AsyncIterator[game_service_pb2.PlaceBetsRequest]:
            while (request := await outbox.get()) is not None:
                yield request

        stream = self._game.PlaceBets(requests())
        self._reader = asyncio.get_running_loop().create_task(self._read(stream, outbox))

    async def _read(
        self,
        stream: grpc.aio.StreamStreamCall,
        outbox: asyncio.Queue[game_service_pb2.PlaceBetsRequest | None],
    ) -> None:
        try:
            async for response in stream:
                answer = self._sent.pop(response.batch_id, None)
                if answer is not None and not answer.done():
                    answer.set_result(list(response.results))
        except grpc.aio.AioRpcError as error:
            log.warning("bet stream to game_svc broke", error=str(error.details()))
        finally:
            if self._outbox is outbox:
                self._outbox = None
            self._fail_sent()

    def _fail_sent(self) -> None:
        sent, self._sent = self._sent, {}
        for answer in sent.values():
            if not answer.done():
                answer.set_exception(
                    Unavailable("GAME_UNAVAILABLE", "the game service did not answer; retry")
                )

    async def close(self) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
