"""Wallet stakes per second through the real service on PostgreSQL, beside echo and a 1-tx baseline.

Three loads, driven the same way (closed loop, one channel, the harness's warm-up and median):
the wallet process on a fresh PostgreSQL database taking single-stake PlaceStakes calls from 1,
16 and 256 clients; a plain grpc.aio echo process at 256 (the transport's ceiling); and the
usual one-transaction-per-stake code through SQLAlchemy on the same database at 256 (SELECT
... FOR UPDATE the balance, UPDATE it, INSERT the stake, COMMIT). Then the batched shape the
session service uses: 50 stakes for 50 players per call, 16 callers. Every stake must come
back ACCEPTED; the ledger must reconcile afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.echo import echo_server, measure_echo
from bench.harness import Load, Report, closed_loop, cpu_seconds, median_of, pid_of
from casino.common.v1 import common_pb2
from casino.wallet.v1 import wallet_pb2, wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.platform import Platform

ADMIN_URL = os.environ.get("CASINO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PLAYERS = 1024
BATCH = 50
BATCH_CALLERS = 16
TABLES = 16
FUNDS = 10**12


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (SQLAlchemy asyncpg URL), dropped afterwards."""
    name = f"casino_bench_wallet_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _eur(amount: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency="EUR")


class Bettor:
    """Places stakes with unique bet ids and keys; raises unless every stake is accepted."""

    def __init__(self, stub: wallet_service_pb2_grpc.WalletServiceStub, run: str) -> None:
        self.stub = stub
        self.run = run
        self.counter = itertools.count()

    async def stake(self, players: list[int], table: int) -> None:
        n = next(self.counter)
        request = wallet_service_pb2.PlaceStakesRequest(
            idempotency_key=f"{self.run}-k{n}",
            table_id=f"table-{table}",
            round_id=f"{self.run}-round-{table}",
            fencing_token=1,
            stakes=[
                wallet_pb2.Stake(bet_id=f"{self.run}-b{n}-{p}", player_id=f"p{p}", amount=_eur(100))
                for p in players
            ],
        )
        reply = await self.stub.PlaceStakes(request, timeout=30)
        if any(r.status != wallet_pb2.STAKE_STATUS_ACCEPTED for r in reply.results):
            raise RuntimeError(f"stake refused: {reply.results[0].reason}")

    async def single(self, worker: int) -> None:
        """One stake per call, the worker's own player and table."""
        await self.stake([worker % PLAYERS], worker % TABLES)

    async def batch(self, worker: int) -> None:
        """A batch as the session service sends it: one stake each for BATCH players."""
        await self.stake([worker * BATCH + i for i in range(BATCH)], worker % TABLES)


async def _fund(stub: wallet_service_pb2_grpc.WalletServiceStub, players: int) -> None:
    async def one(p: int) -> None:
        await stub.OpenAccount(
            wallet_service_pb2.OpenAccountRequest(
                idempotency_key=f"open-{p}", player_id=f"p{p}", currency="EUR"
            )
        )
        await stub.Deposit(
            wallet_service_pb2.DepositRequest(
                idempotency_key=f"fund-{p}", player_id=f"p{p}", amount=_eur(FUNDS)
            )
        )

    for start in range(0, players, 128):
        await asyncio.gather(*(one(p) for p in range(start, min(players, start + 128))))


async def _wallet_loads(
    address: str, pid: int, duration: float, runs: int
) -> tuple[dict[str, Load], float]:
    """The loads, and the wallet process's CPU time per single-stake call at 256 clients."""
    loads: dict[str, Load] = {}
    cpu_per_call = float("nan")
    async with grpc.aio.insecure_channel(address) as channel:
        stub = wallet_service_pb2_grpc.WalletServiceStub(channel)
        await _fund(stub, PLAYERS)
        for concurrency in (1, 16, 256):
            results = []
            calls, started = 0, cpu_seconds(pid)
            for run in range(runs):
                bettor = Bettor(stub, f"c{concurrency}r{run}")
                results.append(await closed_loop(bettor.single, concurrency, duration))
                calls += next(bettor.counter)
            loads[f"c{concurrency}"] = median_of(results)
            cpu_per_call = (cpu_seconds(pid) - started) / calls
        results = []
        for run in range(runs):
            bettor = Bettor(stub, f"batch-r{run}")
            results.append(await closed_loop(bettor.batch, BATCH_CALLERS, duration))
        loads["batched"] = median_of(results)
        reconciled = await wallet_service_pb2_grpc.WalletAdminServiceStub(channel).Reconcile(
            wallet_service_pb2.ReconcileRequest(), timeout=120
        )
        if not reconciled.ok:
            raise RuntimeError(f"the ledger does not reconcile after the run: {reconciled}")
    return loads, cpu_per_call


BASELINE_SCHEMA = (
    "CREATE TABLE baseline_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL"
    " CHECK (balance >= 0))",
    "CREATE TABLE baseline_stakes (bet_id TEXT PRIMARY KEY, account_id BIGINT NOT NULL"
    " REFERENCES baseline_accounts (id), amount BIGINT NOT NULL, created_at TIMESTAMPTZ"
    " NOT NULL DEFAULT now())",
)


async def _baseline_stake(engine: AsyncEngine, account: int, bet_id: str) -> None:
    """The usual code: lock the balance row, check, debit, record the stake, commit."""
    async with engine.begin() as conn:
        balance = await conn.scalar(
            text("SELECT balance FROM baseline_accounts WHERE id = :id FOR UPDATE"),
            {"id": account},
        )
        if balance is None or balance < 100:
            raise RuntimeError("insufficient funds")
        await conn.execute(
            text("UPDATE baseline_accounts SET balance = balance - 100 WHERE id = :id"),
            {"id": account},
        )
        await conn.execute(
            text("INSERT INTO baseline_stakes (bet_id, account_id, amount) VALUES (:b, :a, 100)"),
            {"b": bet_id, "a": account},
        )


async def _baseline(url: str, duration: float, runs: int) -> Load:
    engine = create_async_engine(url, pool_size=64, max_overflow=0)
    try:
        async with engine.begin() as conn:
            for statement in BASELINE_SCHEMA:
                await conn.execute(text(statement))
            await conn.execute(
                text(
                    "INSERT INTO baseline_accounts SELECT g, :funds FROM generate_series(0, :n) g"
                ),
                {"funds": FUNDS, "n": PLAYERS},
            )
        counter = itertools.count()
        results = [
            await closed_loop(
                lambda worker: _baseline_stake(engine, worker % PLAYERS, f"b{next(counter)}"),
                256,
                duration,
            )
            for _ in range(runs)
        ]
    finally:
        await engine.dispose()
    return median_of(results)


async def main(quick: bool) -> Report:
    report = Report("wallet")
    duration, runs = (1.0, 1) if quick else (4.0, 3)
    async with fresh_database() as url:
        platform = Platform(
            data_dir=Path(tempfile.mkdtemp(prefix="bench-wallet-")),
            packages=("wallet_svc",),
            free_ports=True,
            env={"CASINO_DATABASE_URL": url, "CASINO_LOG_LEVEL": "warning"},
        )
        await platform.start()
        try:
            loads, wallet_cpu = await _wallet_loads(
                platform.addresses["wallet_svc"],
                platform.processes["wallet_svc"].process.pid,
                duration,
                runs,
            )
        finally:
            await platform.stop()
        async with echo_server() as address:
            echo_pid = pid_of("bench.echo", address.rsplit(":", 1)[1])
            started = cpu_seconds(echo_pid)
            echo = await measure_echo(address, 256, duration, runs)
            # measure_echo does not count its calls: its rate over warm-up and runs estimates them
            echo_cpu = (cpu_seconds(echo_pid) - started) / (
                echo.calls_per_s * (duration + 0.5) * runs
            )
        baseline = await _baseline(url, duration, runs)
    figures = report.figures
    for name in ("c1", "c16", "c256"):
        figures[f"stakes_per_s_{name}"] = round(loads[name].calls_per_s, 1)
    figures["echo_per_s_c256"] = round(echo.calls_per_s, 1)
    figures["baseline_per_s_c256"] = round(baseline.calls_per_s, 1)
    figures["ratio_vs_echo_c256"] = round(loads["c256"].calls_per_s / echo.calls_per_s, 3)
    figures["ratio_vs_baseline_c256"] = round(loads["c256"].calls_per_s / baseline.calls_per_s, 3)
    figures["p50_ms_c1"] = round(loads["c1"].p50_ms, 2)
    figures["p50_ms_c16"] = round(loads["c16"].p50_ms, 2)
    figures["p99_ms_c16"] = round(loads["c16"].p99_ms, 2)
    figures["p50_ms_c256"] = round(loads["c256"].p50_ms, 2)
    figures["p99_ms_c256"] = round(loads["c256"].p99_ms, 2)
    figures["baseline_p99_ms_c256"] = round(baseline.p99_ms, 2)
    figures["batched_stakes_per_s"] = round(loads["batched"].calls_per_s * BATCH, 1)
    figures["batched_p99_ms"] = round(loads["batched"].p99_ms, 2)
    figures["wallet_server_cpu_us_per_call_c256"] = round(wallet_cpu * 1e6, 1)
    figures["echo_server_cpu_us_per_call_c256"] = round(echo_cpu * 1e6, 1)
    report.targets = {
        "ratio_vs_echo_c256": {">=": 0.75},
        "ratio_vs_baseline_c256": {">=": 2.0},
        "p99_ms_c16": {"<=": 25.0},
        "batched_stakes_per_s": {">=": 20000.0},
    }
    errors = sum(load.errors for load in (*loads.values(), echo, baseline))
    if errors:
        report.notes.append(f"{errors} calls failed during the measurement")
    report.notes.append(
        f"{'quick: 1 run of 1 s' if quick else f'median of {runs} runs of {duration:.0f} s'}"
        f" after a 0.5 s warm-up; the ledger reconciled after the wallet runs"
    )
    report.notes.append(
        "server CPU per call (wallet incl. its group-commit thread, vs echo) shows what a"
        " stake costs beyond the transport on this shared 2-core machine, whatever else runs"
    )
    return report
