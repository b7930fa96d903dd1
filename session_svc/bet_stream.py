"""Bets to game_svc in batches: one PlaceBets stream per process, shared by every player call.

Calls that arrive within ``linger_s`` of each other for the same round leave as one batch
(up to ``max_batch`` bets), so a thousand players betting at once cost the game and the
wallet a few calls, not a thousand. Answers come back on the stream in any order and are
matched by batch id. If the stream breaks, the calls waiting on it fail with UNAVAILABLE:
a retry is safe, as bets are idempotent by bet id all the way to the wallet.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc

from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino_kit.errors import Unavailable
from casino_kit.logs import get_logger

log = get_logger(__name__)


@dataclass
class _Batch:
    table_id: str
    round_id: str
    bets: list[game_pb2.Bet] = field(default_factory=list)
    waiting: list[tuple[int, int, asyncio.Future[list[game_pb2.BetResult]]]] = field(
        default_factory=list
    )
    """(first index, count, future) per call: its slice of the batch's results."""


class GameBets:
    def __init__(
        self,
        game: game_service_pb2_grpc.GameServiceStub,
        *,
        linger_s: float = 0.002,
        max_batch: int = 1000,
    ) -> None:
        self._game = game
        self._linger_s = linger_s
        self._max_batch = max_batch
        self._open: dict[tuple[str, str], _Batch] = {}
        self._sent: dict[str, _Batch] = {}
        self._outbox: asyncio.Queue[game_service_pb2.PlaceBetsRequest | None] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def place(
        self, table_id: str, round_id: str, bets: list[game_pb2.Bet]
    ) -> list[game_pb2.BetResult]:
        """The game's result for each of ``bets``, in order."""
        key = (table_id, round_id)
        batch = self._open.get(key)
        if batch is None or len(batch.bets) + len(bets) > self._max_batch:
            if batch is not None:
                self._send(batch)
            batch = _Batch(table_id, round_id)
            self._open[key] = batch
            asyncio.get_running_loop().call_later(self._linger_s, self._send_if_open, batch)
        future: asyncio.Future[list[game_pb2.BetResult]] = (
            asyncio.get_running_loop().create_future()
        )
        batch.waiting.append((len(batch.bets), len(bets), future))
        batch.bets.extend(bets)
        return await future

    def _send_if_open(self, batch: _Batch) -> None:
        if self._open.get((batch.table_id, batch.round_id)) is batch:
            self._send(batch)

    def _send(self, batch: _Batch) -> None:
        self._open.pop((batch.table_id, batch.round_id), None)
        if self._outbox is None or self._reader is None or self._reader.done():
            self._connect()
        batch_id = uuid.uuid4().hex
        self._sent[batch_id] = batch
        assert self._outbox is not None
        self._outbox.put_nowait(
            game_service_pb2.PlaceBetsRequest(
                idempotency_key=batch_id,
                batch_id=batch_id,
                table_id=batch.table_id,
                round_id=batch.round_id,
                bets=batch.bets,
            )
        )

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
                batch = self._sent.pop(response.batch_id, None)
                if batch is None:
                    continue
                results = list(response.results)
                for first, count, future in batch.waiting:
                    if not future.done():
                        future.set_result(results[first : first + count])
        except grpc.aio.AioRpcError as error:
            log.warning("bet stream to game_svc broke", error=str(error.details()))
        finally:
            if self._outbox is outbox:
                self._outbox = None
            self._fail_sent()

    def _fail_sent(self) -> None:
        sent, self._sent = self._sent, {}
        for batch in sent.values():
            for _, _, future in batch.waiting:
                if not future.done():
                    future.set_exception(
                        Unavailable("GAME_UNAVAILABLE", "the game service did not answer; retry")
                    )

    async def close(self) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
