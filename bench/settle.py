"""Settle: one roulette round with 10,000 bets on PostgreSQL, from result to RoundSettled.

Real rng_svc, wallet_svc and game_svc processes, each on its own fresh PostgreSQL
database. 1,000 players each place 10 straight-up bets (in batches of 1,000 over one
PlaceBets stream) inside the betting window. The figure is the time from the round's
RoundResult (its server time) to the receipt of the last RoundSettled part by a
subscriber: payouts computed, one SettleRound batch committed by the wallet, the
settlement saved and published. The median over several rounds is reported.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from bench.harness import Report
from bench.wallet import fresh_database
from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.platform import Platform

PLAYERS, BETS_EACH, BATCH = 1_000, 10, 1_000
WINDOW_S = 20


def eur(amount: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency="EUR")


def table_config() -> game_pb2.TableConfig:
    return game_pb2.TableConfig(
        name="Settle bench",
        game_type=common_pb2.GAME_TYPE_ROULETTE,
        result_source=game_pb2.RESULT_SOURCE_RNG,
        betting_window_seconds=WINDOW_S,
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


async def open_players(wallet: wallet_service_pb2_grpc.WalletServiceStub) -> list[str]:
    players = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(PLAYERS)]
    gate = asyncio.Semaphore(64)

    async def one(player: str) -> None:
        async with gate:
            await wallet.OpenAccount(
                wallet_service_pb2.OpenAccountRequest(
                    idempotency_key=uuid.uuid4().hex, player_id=player, currency="EUR"
                ),
                timeout=30,
            )
            await wallet.Deposit(
                wallet_service_pb2.DepositRequest(
                    idempotency_key=uuid.uuid4().hex, player_id=player, amount=eur(10_000_000)
                ),
                timeout=30,
            )

    await asyncio.gather(*(one(p) for p in players))
    return players


async def place_round(
    game: game_service_pb2_grpc.GameServiceStub, table_id: str, round_id: str, players: list[str]
) -> int:
    """Place 10,000 bets on one stream; returns how many were accepted."""
    bets = [
        game_pb2.Bet(
            bet_id=uuid.uuid4().hex,
            player_id=player,
            spot=bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_STRAIGHT, numbers=[number]),
            stake=eur(100),
        )
        for player in players
        for number in range(BETS_EACH)
    ]

    async def batches() -> AsyncIterator[game_service_pb2.PlaceBetsRequest]:
        for start in range(0, len(bets), BATCH):
            yield game_service_pb2.PlaceBetsRequest(
                idempotency_key=uuid.uuid4().hex,
                batch_id=str(start),
                table_id=table_id,
                round_id=round_id,
                bets=bets[start : start + BATCH],
            )

    accepted = 0
    async for response in game.PlaceBets(batches(), timeout=WINDOW_S):
        accepted += sum(1 for r in response.results if r.status == bet_pb2.BET_STATUS_ACCEPTED)
    return accepted


async def measure(address: str, wallet_address: str, rounds: int) -> tuple[list[float], int]:
    async with (
        grpc.aio.insecure_channel(address) as channel,
        grpc.aio.insecure_channel(wallet_address) as wallet_channel,
    ):
        game = game_service_pb2_grpc.GameServiceStub(channel)
        admin = game_service_pb2_grpc.TableAdminServiceStub(channel)
        players = await open_players(wallet_service_pb2_grpc.WalletServiceStub(wallet_channel))
        created = await admin.CreateTable(
            game_service_pb2.CreateTableRequest(
                idempotency_key=uuid.uuid4().hex,
                operator_id="bench",
                reason="settle bench",
                config=table_config(),
            )
        )
        durations: list[float] = []
        settled_bets = 0
        result_at: float | None = None
        parts_left = 0
        placing: asyncio.Task[int] | None = None
        stream = game.Subscribe(
            game_service_pb2.SubscribeRequest(table_id=created.table_id, from_sequence=1)
        )
        async for message in stream:
            event: table_event_pb2.TableEvent = message.event
            kind = event.WhichOneof("payload")
            if kind == "round_opened" and placing is None:
                placing = asyncio.ensure_future(
                    place_round(game, created.table_id, event.round_id, players)
                )
            elif kind == "round_result" and placing is not None:
                result_at = event.server_time.ToNanoseconds() / 1e9
            elif kind == "round_settled" and result_at is not None:
                parts_left = event.round_settled.part_count - event.round_settled.part
                settled_bets += len(event.round_settled.bets)
                if parts_left == 0:
                    durations.append(time.time() - result_at)
                    accepted = await placing  # type: ignore[misc]
                    if settled_bets != accepted:
                        raise RuntimeError(f"settled {settled_bets} of {accepted} bets")
                    result_at, placing, settled_bets = None, None, 0
                    if len(durations) == rounds:
                        stream.cancel()
                        break
        return durations, accepted


async def main(quick: bool) -> Report:
    rounds = 1 if quick else 3
    async with fresh_database() as wallet_db, fresh_database() as game_db:
        with tempfile.TemporaryDirectory() as data_dir:
            platform = Platform(
                data_dir=Path(data_dir),
                packages=("rng_svc", "wallet_svc", "game_svc"),
                free_ports=True,
                env={"CASINO_ROUND_PAUSE_S": "0.5"},
                service_env={
                    "wallet_svc": {"CASINO_DATABASE_URL": wallet_db},
                    "game_svc": {"CASINO_DATABASE_URL": game_db},
                },
            )
            await platform.start()
            try:
                durations, bets = await asyncio.wait_for(
                    measure(
                        platform.addresses["game_svc"], platform.addresses["wallet_svc"], rounds
                    ),
                    timeout=120 * rounds,
                )
            finally:
                await platform.stop()
    report = Report("settle")
    report.figures["bets_per_round"] = float(bets)
    report.figures["settle_10k_bets_ms"] = round(1000 * statistics.median(durations), 1)
    report.figures["settle_max_ms"] = round(1000 * max(durations), 1)
    report.targets["settle_10k_bets_ms"] = {"<=": 1000.0}
    report.notes.append(
        f"median of {len(durations)} rounds; RoundResult server time -> last RoundSettled "
        "part received; rng, wallet and game on PostgreSQL"
    )
    return report
