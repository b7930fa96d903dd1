"""Bets end to end: session -> durable wallet stake -> game, against a plain grpc.aio echo.

Real rng, wallet and game processes on PostgreSQL and two session replicas on Redis sharing
one port (SO_REUSEPORT: the kernel spreads the players' connections over both, one per CPU,
as a Service spreads them over pods); 64 players, each on its own connection, with open
sessions at one RNG roulette table with a long betting window. (a) The
players bet one bet per PlaceBets call back to back (closed loop): accepted bets per second
beside the echo service driven the same way in the same run. (b) Bets sent on a fixed
schedule of 1,000 per second whatever the answers (open loop): acknowledgement latency.
Only accepted bets count; the bench follows the table's rounds, so a bet refused because a
round just closed is retried on the next one and its latency is not counted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.echo import echo_server, measure_echo
from bench.harness import (
    WARMUP_S,
    Load,
    Report,
    closed_loop,
    cpu_by_role,
    cpu_us_per_call,
    median_of,
    percentile,
)
from bench.wallet import fresh_database
from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino.session.v1 import session_pb2, session_service_pb2, session_service_pb2_grpc
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.platform import Platform
from session_svc.tokens import HS256, SignKey, b64url_encode, issue_launch, platform_player_id

PLAYERS = 64
SESSION_REPLICAS = 2
OPEN_LOOP_RATE = 1_000
REDIS = "redis://127.0.0.1:6379/0"
OPERATOR = "bench-operator"


def eur(amount: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency="EUR")


def launch_token(secret: bytes, player_id: str) -> str:
    return issue_launch(OPERATOR, SignKey(HS256, secret=secret), player_id)


class Table:
    """Follows the table's open round from its event stream."""

    def __init__(self, game: game_service_pb2_grpc.GameServiceStub, table_id: str) -> None:
        self.table_id = table_id
        self.round_id = ""
        self.opened = asyncio.Event()
        self._task = asyncio.ensure_future(self._follow(game))

    async def _follow(self, game: game_service_pb2_grpc.GameServiceStub) -> None:
        stream = game.Subscribe(
            game_service_pb2.SubscribeRequest(table_id=self.table_id, from_sequence=1)
        )
        async for message in stream:
            event = message.event
            if event.HasField("round_opened"):
                self.round_id = event.round_id
                self.opened.set()
            elif event.HasField("bets_closed"):
                self.opened.clear()

    def close(self) -> None:
        self._task.cancel()


class Bettors:
    """Players with open sessions, each betting red, one bet per call."""

    def __init__(
        self,
        sessions: list[session_service_pb2_grpc.SessionServiceStub],
        table: Table,
        tokens: list[str],
    ) -> None:
        self.sessions = sessions
        """One stub per player, each on its own connection."""
        self.table = table
        self.tokens = tokens
        self.refused = 0

    async def bet(self, player: int, scheduled: float | None = None) -> float | None:
        """One bet; its latency in ms if accepted (from ``scheduled``, its ``perf_counter``
        send time in an open loop, else from when it is sent), None if the round was
        closing."""
        if not self.table.opened.is_set():
            await self.table.opened.wait()
            scheduled = None  # between rounds: timed from the reopening, not the schedule
        request = session_service_pb2.PlaceBetsRequest(
            idempotency_key=uuid.uuid4().hex,
            table_id=self.table.table_id,
            round_id=self.table.round_id,
            bets=[
                session_pb2.PlayerBet(
                    client_bet_id=uuid.uuid4().hex,
                    spot=bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_RED),
                    stake=eur(100),
                )
            ],
        )
        started = time.perf_counter() if scheduled is None else scheduled
        answer = await self.sessions[player % len(self.sessions)].PlaceBets(
            request,
            metadata=(("authorization", f"Bearer {self.tokens[player % len(self.tokens)]}"),),
            timeout=10,
        )
        if answer.results[0].status != bet_pb2.BET_STATUS_ACCEPTED:
            self.refused += 1
            return None
        return (time.perf_counter() - started) * 1000


async def closed(bettors: Bettors, duration_s: float) -> Load:
    async def call(player: int) -> None:
        if await bettors.bet(player) is None:
            raise RuntimeError("refused")

    return await closed_loop(call, PLAYERS, duration_s)


@dataclass
class OpenLoop:
    latencies: list[float]
    """Of the accepted bets, in ms from when each was due to be sent (a late send counts)."""
    failed: int
    """Calls that ended in an error (deadline, UNAVAILABLE...)."""


async def open_loop(bettors: Bettors, duration_s: float) -> OpenLoop:
    """Send on schedule, ``OPEN_LOOP_RATE`` per second, whatever the answers do."""
    result = OpenLoop([], 0)
    pending: set[asyncio.Task[None]] = set()

    async def one(player: int, due: float) -> None:
        try:
            latency = await bettors.bet(player, due)
        except Exception:
            result.failed += 1
            return
        if latency is not None:
            result.latencies.append(latency)

    start = time.perf_counter()
    for n in range(int(OPEN_LOOP_RATE * duration_s)):
        delay = start + n / OPEN_LOOP_RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(n, start + n / OPEN_LOOP_RATE))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return result


async def setup(platform: Platform, secret: bytes) -> tuple[Table, Bettors, list[grpc.aio.Channel]]:
    channels = [
        grpc.aio.insecure_channel(platform.addresses[name])
        for name in ("game_svc", "wallet_svc", "session_svc")
    ]
    game_channel, wallet_channel, session_channel = channels
    game = game_service_pb2_grpc.GameServiceStub(game_channel)
    admin = game_service_pb2_grpc.TableAdminServiceStub(game_channel)
    wallet = wallet_service_pb2_grpc.WalletServiceStub(wallet_channel)
    session = session_service_pb2_grpc.SessionServiceStub(session_channel)
    config = game_pb2.TableConfig(
        name="Bets bench",
        game_type=common_pb2.GAME_TYPE_ROULETTE,
        result_source=game_pb2.RESULT_SOURCE_RNG,
        betting_window_seconds=120,
        currency="EUR",
        limits=bet_pb2.TableLimits(
            bet_limits=[
                bet_pb2.BetLimit(
                    bet_type=bet_pb2.BET_TYPE_ROULETTE_RED,
                    min_stake=eur(100),
                    max_stake=eur(10**12),
                )
            ]
        ),
    )
    created = await admin.CreateTable(
        game_service_pb2.CreateTableRequest(
            idempotency_key=uuid.uuid4().hex, operator_id="bench", reason="bench", config=config
        )
    )
    tokens = []
    for n in range(PLAYERS):
        player = f"bettor-{n}-{uuid.uuid4().hex[:6]}"
        account = platform_player_id(OPERATOR, player)
        await wallet.OpenAccount(
            wallet_service_pb2.OpenAccountRequest(
                idempotency_key=uuid.uuid4().hex, player_id=account, currency="EUR"
            )
        )
        await wallet.Deposit(
            wallet_service_pb2.DepositRequest(
                idempotency_key=uuid.uuid4().hex, player_id=account, amount=eur(10**12)
            )
        )
        opened = await session.OpenSession(
            session_service_pb2.OpenSessionRequest(
                idempotency_key=uuid.uuid4().hex,
                operator_id=OPERATOR,
                launch_token=launch_token(secret, player),
            )
        )
        await session.JoinTable(
            session_service_pb2.JoinTableRequest(
                idempotency_key=uuid.uuid4().hex, table_id=created.table_id
            ),
            metadata=(("authorization", f"Bearer {opened.session_token}"),),
        )
        tokens.append(opened.session_token)
    # A channel each (a local subchannel pool: not one shared connection), as players are.
    players = [
        grpc.aio.insecure_channel(
            platform.addresses["session_svc"], options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(PLAYERS)
    ]
    channels += players
    table = Table(game, created.table_id)
    await asyncio.wait_for(table.opened.wait(), 30)
    stubs = [session_service_pb2_grpc.SessionServiceStub(c) for c in players]
    return table, Bettors(stubs, table, tokens), channels


@contextlib.asynccontextmanager
async def running_platform(secret: bytes) -> AsyncIterator[Platform]:
    keys = json.dumps({OPERATOR: {"alg": "HS256", "secret": b64url_encode(secret)}})
    async with fresh_database() as wallet_db, fresh_database() as game_db:
        with tempfile.TemporaryDirectory() as data_dir:
            platform = Platform(
                data_dir=Path(data_dir),
                packages=("rng_svc", "wallet_svc", "game_svc", "session_svc"),
                free_ports=True,
                service_env={
                    "wallet_svc": {"CASINO_DATABASE_URL": wallet_db},
                    "game_svc": {"CASINO_DATABASE_URL": game_db},
                    "session_svc": {
                        "CASINO_REDIS_URL": REDIS,
                        "CASINO_KEY_PREFIX": f"casino:bench:{uuid.uuid4().hex[:8]}:",
                        "CASINO_SESSION_KEY": base64.urlsafe_b64encode(
                            secrets.token_bytes(32)
                        ).decode(),
                        "CASINO_OPERATOR_KEYS": keys,
                        "CASINO_RATE_PER_S": "100000",
                        "CASINO_RATE_BURST": "100000",
                    },
                },
            )
            await platform.start()
            replicas = []
            try:
                for _ in range(SESSION_REPLICAS - 1):
                    replica = await platform.spawn("session_svc")
                    replicas.append(replica)
                    await replica.wait_serving(60)
                yield platform
            finally:
                await asyncio.gather(*(r.terminate() for r in replicas))
                await platform.stop()


async def main(quick: bool) -> Report:
    duration, runs = (3.0, 1) if quick else (8.0, 3)
    secret = secrets.token_bytes(32)
    async with echo_server() as echo_address, running_platform(secret) as platform:
        table, bettors, channels = await setup(platform, secret)
        try:
            echo = await measure_echo(echo_address, PLAYERS, duration, runs)
            before = cpu_by_role()
            closed_runs = [await closed(bettors, duration) for _ in range(runs)]
            # CPU spans the warm-ups too: estimate their bets at each run's measured rate.
            placed = sum(r.calls_per_s * (duration + WARMUP_S) for r in closed_runs)
            budget = cpu_us_per_call(before, cpu_by_role(), placed)
            bets = median_of(closed_runs)
            steady = await open_loop(bettors, duration)
        finally:
            table.close()
            for channel in channels:
                await channel.close()
    report = Report("bets")
    report.figures = {
        "bets_per_s": round(bets.calls_per_s, 1),
        "echo_per_s": round(echo.calls_per_s, 1),
        "ratio_vs_echo": round(bets.calls_per_s / echo.calls_per_s, 3),
        "bet_p50_ms_c64": round(bets.p50_ms, 2),
        "bet_p99_ms_c64": round(bets.p99_ms, 2),
        "bet_ack_p50_ms_at_1000": round(percentile(steady.latencies, 0.50), 2),
        "bet_ack_p99_ms_at_1000": round(percentile(steady.latencies, 0.99), 2),
        "bet_failed_at_1000": float(steady.failed),
    }
    report.figures |= {f"cpu_us_per_bet_{role}": us for role, us in budget.items()}
    report.figures["cpu_us_per_bet_total"] = round(sum(budget.values()), 1)
    report.targets = {"ratio_vs_echo": {">=": 0.5}, "bet_ack_p99_ms_at_1000": {"<=": 50.0}}
    report.notes.append(
        f"{PLAYERS} players on {SESSION_REPLICAS} session replicas, one bet per call; "
        f"open loop {OPEN_LOOP_RATE}/s for {duration:.0f} s "
        f"({len(steady.latencies)} acknowledged, timed from when each was due); "
        f"median of {runs} closed-loop runs; "
        f"{bettors.refused} bets refused at round changes (not counted)"
    )
    report.notes.append(f"mean open-loop ack {statistics.fmean(steady.latencies or [0]):.1f} ms")
    report.notes.append(
        "cpu_us_per_bet_*: CPU time per accepted bet over the closed-loop runs, by process "
        "(client: this benchmark's players; postgres and redis: all their processes); "
        f"the machine has {os.cpu_count()} cores, {os.cpu_count()}e6 us per second"
    )
    return report
