"""Table fan-out: one table's events to 5,000 WatchTable streams, delay and loss.

The real path: a game_svc (with its wallet and RNG) owns a table; two session_svc processes
on one Redis (the production shape: several replicas, here one per core) each hold one
upstream subscription to it and serve half of the players. Load generators in their own
processes open a session per player, join the table and open WatchTable, alternating
between the session processes, and wait for every stream's first snapshot. Then the table
publishes events at a steady rate (the operator suspends and resumes it: each is a
committed table event). The delay of each message is from the event's ``server_time``
(stamped by game_svc before it commits the event) to its receipt by the client; a gap in a
stream's table sequences not covered by a snapshot counts as lost. A stream resynchronised
by a snapshot is counted apart: not lost, reported as ``resyncs``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import uvloop

from bench.harness import Report, cpu_by_role, cpu_us_per_call, percentile
from bench.wallet import fresh_database
from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino.session.v1 import session_service_pb2 as pb
from casino.session.v1 import session_service_pb2_grpc
from casino_cli.platform import Platform, free_port
from casino_kit.server import quiet_gc
from session_svc.tokens import HS256, SignKey, b64url_encode, issue_launch

OPERATOR = "bench-op"
STREAMS_PER_CHANNEL = 250
RAMP_WAVE = 250
SETUP_CONCURRENCY = 64
REDIS_URL = os.environ.get("CASINO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


# -- a load generator process -----------------------------------------------------------------


@dataclass
class StreamStats:
    covered: int = 0
    lost: int = 0
    resyncs: int = 0
    started: bool = False
    target: int = 0


def launch_token(secret: bytes, player_id: str) -> str:
    return issue_launch(OPERATOR, SignKey(HS256, secret=secret), player_id)


async def join(
    stub: session_service_pb2_grpc.SessionServiceStub, secret: bytes, player: str, table: str
) -> str:
    opened = await stub.OpenSession(
        pb.OpenSessionRequest(
            idempotency_key=uuid.uuid4().hex,
            operator_id=OPERATOR,
            launch_token=launch_token(secret, player),
        ),
        timeout=60,
    )
    metadata = (("authorization", f"Bearer {opened.session_token}"),)
    await stub.JoinTable(
        pb.JoinTableRequest(idempotency_key=uuid.uuid4().hex, table_id=table),
        metadata=metadata,
        timeout=60,
    )
    token: str = opened.session_token
    return token


async def load(
    addresses: list[str], secret: bytes, table_id: str, first: int, streams: int, events: int
) -> None:
    """Open ``streams`` players' sessions and WatchTable streams, print ``ready`` once each
    has its snapshot, read until every stream has the next ``events`` table events (or
    nothing arrives for 30 s), then print the figures as JSON."""
    quiet_gc()  # a player's device does not share its collector with 2,500 others
    delays_ms: list[float] = []
    stats = [StreamStats() for _ in range(streams)]
    started = finished = 0
    done = asyncio.Event()
    progress = [time.monotonic()]
    per_node = max(1, streams // len(addresses) // STREAMS_PER_CHANNEL)
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for address in addresses
        for _ in range(per_node)
    ]
    stubs = [session_service_pb2_grpc.SessionServiceStub(c) for c in channels]

    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def setup(index: int) -> str:
        async with gate:
            stub = stubs[index % len(stubs)]
            return await join(stub, secret, f"p{first + index}", table_id)

    tokens = await asyncio.gather(*(setup(i) for i in range(streams)))

    async def read(index: int) -> None:
        nonlocal started, finished
        call = stubs[index % len(stubs)].WatchTable(
            pb.WatchTableRequest(table_id=table_id),
            metadata=(("authorization", f"Bearer {tokens[index]}"),),
        )
        mine = stats[index]
        async for message in call:
            received_ns = time.time_ns()
            kind = message.WhichOneof("event")
            if kind == "table_snapshot":
                sequence = message.table_snapshot.table_sequence
                if mine.started:
                    mine.resyncs += 1
                else:
                    mine.started = True
                    mine.target = sequence + events
                    started += 1
                mine.covered = max(mine.covered, sequence)
            elif kind == "table_event":
                event = message.table_event
                delays_ms.append((received_ns - event.server_time.ToNanoseconds()) / 1e6)
                if event.sequence > mine.covered + 1:
                    mine.lost += event.sequence - mine.covered - 1
                mine.covered = max(mine.covered, event.sequence)
            progress[0] = time.monotonic()
            if mine.started and mine.covered >= mine.target:
                finished += 1
                if finished == streams:
                    done.set()
                call.cancel()
                return

    # Players arrive in waves, not all in one millisecond: a burst of thousands of new calls
    # overflows gRPC core's queue of calls the server has not picked up yet (about 1,000).
    tasks: list[asyncio.Task[None]] = []
    for wave in range(0, streams, RAMP_WAVE):
        tasks += [asyncio.create_task(read(i)) for i in range(wave, min(streams, wave + RAMP_WAVE))]
        deadline = time.monotonic() + 60
        while started < min(streams, wave + RAMP_WAVE) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    if started < streams:
        print(f"only {started} of {streams} streams started", file=sys.stderr, flush=True)
        raise SystemExit(1)
    print("ready", flush=True)
    cpu_ready = time.process_time()
    progress[0] = time.monotonic()
    while not done.is_set() and time.monotonic() - progress[0] < 30:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    result = {
        "delays_ms": delays_ms,
        "lost": sum(s.lost + max(0, s.target - s.covered) for s in stats),
        "resyncs": sum(s.resyncs for s in stats),
        "cpu_s": time.process_time() - cpu_ready,
    }
    print(json.dumps(result), flush=True)


# -- the coordinator --------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    sessions: list[str]
    game: str
    secret: bytes


@contextlib.asynccontextmanager
async def deployment(data_dir: Path) -> AsyncIterator[Deployment]:
    """rng, wallet and game on PostgreSQL (the production shape: the embedded SQLite costs the
    game most of a core here, taken from the fan-out) and two session processes sharing one
    Redis."""
    secret = secrets.token_bytes(32)
    prefix = f"bench:session:{uuid.uuid4().hex}:"
    env = {
        "CASINO_OPERATOR_KEYS": json.dumps(
            {OPERATOR: {"alg": "HS256", "secret": b64url_encode(secret)}}
        ),
        "CASINO_REDIS_URL": REDIS_URL,
        "CASINO_SESSION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "CASINO_KEY_PREFIX": prefix,
        "CASINO_LOG_LEVEL": "warning",
    }
    async with fresh_database() as wallet_db, fresh_database() as game_db:
        platform = Platform(
            data_dir=data_dir,
            packages=("rng_svc", "wallet_svc", "game_svc", "session_svc"),
            free_ports=True,
            env=env,
            service_env={
                "wallet_svc": {"CASINO_DATABASE_URL": wallet_db},
                "game_svc": {"CASINO_DATABASE_URL": game_db},
            },
        )
        await platform.start()
        second = await platform.spawn("session_svc", port=free_port())
        try:
            await second.wait_serving(60)
            yield Deployment(
                [platform.addresses["session_svc"], second.address],
                platform.addresses["game_svc"],
                secret,
            )
        finally:
            await second.terminate()
            await platform.stop()


async def create_table(game: str) -> str:
    async with grpc.aio.insecure_channel(game) as channel:
        reply = await game_service_pb2_grpc.TableAdminServiceStub(channel).CreateTable(
            game_service_pb2.CreateTableRequest(
                idempotency_key=uuid.uuid4().hex,
                operator_id="bench",
                reason="fanout benchmark",
                config=game_pb2.TableConfig(
                    name="Fan-out Roulette",
                    game_type=common_pb2.GAME_TYPE_ROULETTE,
                    result_source=game_pb2.RESULT_SOURCE_STUDIO,
                    studio_id="bench-studio",
                    betting_window_seconds=15,
                    currency="EUR",
                    limits=bet_pb2.TableLimits(
                        bet_limits=[
                            bet_pb2.BetLimit(
                                bet_type=bet_pb2.BET_TYPE_ROULETTE_RED,
                                min_stake=common_pb2.Money(amount_minor=100, currency="EUR"),
                                max_stake=common_pb2.Money(amount_minor=100_000, currency="EUR"),
                            )
                        ]
                    ),
                ),
            ),
            timeout=30,
        )
    table_id: str = reply.table_id
    return table_id


async def publish(game: str, table_id: str, count: int, per_s: float) -> None:
    """``count`` table events at ``per_s``: the operator suspends and resumes the table."""
    async with grpc.aio.insecure_channel(game) as channel:
        admin = game_service_pb2_grpc.TableAdminServiceStub(channel)
        start = time.perf_counter()
        for index in range(count):
            delay = start + index / per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            change = admin.SuspendTable if index % 2 == 0 else admin.ResumeTable
            request_type = (
                game_service_pb2.SuspendTableRequest
                if index % 2 == 0
                else game_service_pb2.ResumeTableRequest
            )
            await change(
                request_type(
                    idempotency_key=uuid.uuid4().hex,
                    operator_id="bench",
                    reason=f"event {index}",
                    table_id=table_id,
                ),
                timeout=30,
            )


@dataclass(frozen=True)
class Run:
    min_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    resyncs: int
    received: int
    session_cpu_us: float
    """The session processes' CPU per message received, from the first event to the last."""
    generator_cpu_us: float


async def one_run(
    running: Deployment, streams: int, events: int, per_s: float, generators: int
) -> Run:
    table_id = await create_table(running.game)
    share = streams // generators
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fanout",
            ",".join(running.sessions),
            running.secret.hex(),
            table_id,
            str(i * share),
            str(share),
            str(events),
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 28,  # a generator's result line holds every delay it measured
        )
        for i in range(generators)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 600)
        if line.strip() != b"ready":
            raise RuntimeError(f"load generator did not start: {line!r}")
    before = cpu_by_role()
    await publish(running.game, table_id, events, per_s)
    delays: list[float] = []
    lost = resyncs = 0
    generator_cpu = 0.0
    for proc in procs:
        assert proc.stdout is not None
        result = json.loads(await proc.stdout.readline())
        await proc.wait()
        delays += result["delays_ms"]
        lost += result["lost"]
        resyncs += result["resyncs"]
        generator_cpu += result["cpu_s"]
    sessions = cpu_us_per_call(before, cpu_by_role(), len(delays)).get("session_svc", 0.0)
    return Run(
        min_ms=min(delays, default=float("nan")),
        p50_ms=percentile(delays, 0.50),
        p99_ms=percentile(delays, 0.99),
        max_ms=max(delays, default=float("nan")),
        lost=lost,
        resyncs=resyncs,
        received=len(delays),
        session_cpu_us=sessions,
        generator_cpu_us=round(generator_cpu / max(1, len(delays)) * 1e6, 1),
    )


async def main(quick: bool) -> Report:
    report = Report("fanout")
    streams, per_s = 5000, 1.0
    events, runs = (10, 1) if quick else (30, 3)
    generators = max(1, min(2, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="fanout-") as data_dir:
        async with deployment(Path(data_dir)) as running:
            await one_run(running, 500, 3, per_s, generators)  # warm-up
            results = [
                await one_run(running, streams, events, per_s, generators) for _ in range(runs)
            ]
    median = sorted(results, key=lambda r: r.p99_ms)[len(results) // 2]
    report.figures.update(
        {
            "streams": float(streams),
            "session_processes": 2.0,
            "events_per_s": per_s,
            "messages_per_s": streams * per_s,
            # The fastest delivery: the path from game_svc without the fan-out's queueing.
            "fanout_min_ms": round(median.min_ms, 2),
            "fanout_p50_ms": round(median.p50_ms, 2),
            "fanout_p99_ms": round(median.p99_ms, 2),
            "fanout_max_ms": round(median.max_ms, 2),
            "events_lost": float(sum(r.lost for r in results)),
            "resyncs": float(sum(r.resyncs for r in results)),
            "events_received": float(median.received),
            "session_cpu_us_per_message": median.session_cpu_us,
            "generator_cpu_us_per_message": median.generator_cpu_us,
        }
    )
    report.targets = {"fanout_p99_ms": {"<=": 150.0}, "events_lost": {"<=": 0.0}}
    report.notes.append(
        f"{runs} run(s) of {events} events at {per_s:g}/s to {streams} WatchTable streams "
        f"over 2 session processes on one Redis, from {generators} load generator "
        "process(es); delay from game_svc's server_time to receipt; figures of the median "
        "run by p99, losses and resyncs summed over all runs"
    )
    report.notes.append(
        "cpu_us_per_message: CPU of both session processes (and of the load generators) from "
        f"the first event to the last receipt, per message received; {os.cpu_count()} cores"
    )
    return report


if __name__ == "__main__":
    addresses, secret_hex, table, first, count, events = sys.argv[1:7]
    uvloop.run(  # a player's device, not the service, so the cheapest loop at hand
        load(
            addresses.split(","),
            bytes.fromhex(secret_hex),
            table,
            int(first),
            int(count),
            int(events),
        )
    )
