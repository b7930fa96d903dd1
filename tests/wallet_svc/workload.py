"""A bank of concurrent clients, dealers and an auditor driving one wallet through gRPC.

Clients deposit, withdraw, stake and read at random; a dealer per table runs rounds (open,
take stakes, close, settle or void); an auditor reads the ledger in one snapshot again and
again. The bank keeps its own book from the answers it got, so at the end every player's
balance must equal what the answers add up to: a stake lost or paid twice shows up there.
Every mutating request and its answer is recorded, for replay.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message

from casino.wallet.v1 import wallet_pb2, wallet_service_pb2
from casino_kit.errors import ErrorDetails, details_of
from tests.wallet_svc.helpers import Client, eur, snapshot

ws = wallet_service_pb2
TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
EXPECTED_REFUSALS = {"INSUFFICIENT_FUNDS", "KYC_REQUIRED"}


@dataclass
class Entry:
    """One mutating call and its definitive answer: response bytes, or error details."""

    method: str
    request: Message
    answer: bytes | ErrorDetails


@dataclass
class Round:
    round_id: str
    table: str
    in_flight: int = 0
    closed: bool = False
    bets: dict[str, tuple[str, int]] = field(default_factory=dict)  # bet -> player, stake


@dataclass
class Bank:
    """Drives ``client`` with ``players`` players; ``retry`` resends until definitive."""

    client: Client
    database_url: str
    players: int = 16
    tables: int = 2
    seed: int = 1
    retry: bool = False
    expected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    deposits: int = 0
    withdrawals: int = 0
    log: list[Entry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    snapshots: int = 0
    rounds: dict[str, Round] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def player(self, index: int) -> str:
        return f"{self.run_id}-p{index}"

    # --- calls ------------------------------------------------------------------------------
    async def call(self, method: str, request: Message) -> Message | ErrorDetails:
        """Send until there is a definitive answer (once, without ``retry``); record it."""
        stub = self.client.admin if method == "SetKycStatus" else self.client.wallet
        while True:
            try:
                reply: Message = await getattr(stub, method)(
                    request, timeout=5, wait_for_ready=self.retry
                )
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                if self.retry and details.code in TRANSIENT:
                    self.counts["retries"] += 1
                    await asyncio.sleep(0.02)
                    continue
                self.log.append(Entry(method, request, details))
                return details
            self.log.append(Entry(method, request, reply.SerializeToString()))
            return reply

    def refused(self, answer: Message | ErrorDetails, allowed: set[str]) -> bool:
        if isinstance(answer, ErrorDetails):
            assert answer.reason in allowed, answer
            self.counts[f"refused {answer.reason}"] += 1
            return True
        return False

    # --- setup ------------------------------------------------------------------------------
    async def open_accounts(self) -> None:
        async def one(index: int) -> None:
            player = self.player(index)
            opened = await self.call(
                "OpenAccount",
                ws.OpenAccountRequest(
                    idempotency_key=f"open-{player}", player_id=player, currency="EUR"
                ),
            )
            assert not isinstance(opened, ErrorDetails), opened
            if index % 4 != 3:  # a quarter never passes KYC
                verified = await self.call(
                    "SetKycStatus",
                    ws.SetKycStatusRequest(
                        idempotency_key=f"kyc-{player}",
                        player_id=player,
                        status=wallet_pb2.KYC_STATUS_VERIFIED,
                        operator_id="op",
                        reason="checked",
                    ),
                )
                assert not isinstance(verified, ErrorDetails), verified

        await asyncio.gather(*(one(i) for i in range(self.players)))

    # --- the actors -------------------------------------------------------------------------
    async def deposit(self, rng: random.Random) -> None:
        player, amount = self.player(rng.randrange(self.players)), rng.randint(1, 500)
        request = ws.DepositRequest(
            idempotency_key=uuid.uuid4().hex, player_id=player, amount=eur(amount)
        )
        answer = await self.call("Deposit", request)
        assert not isinstance(answer, ErrorDetails), answer
        self.expected[player] += amount
        self.deposits += amount

    async def withdraw(self, rng: random.Random) -> None:
        player, amount = self.player(rng.randrange(self.players)), rng.randint(1, 300)
        request = ws.WithdrawRequest(
            idempotency_key=uuid.uuid4().hex, player_id=player, amount=eur(amount)
        )
        answer = await self.call("Withdraw", request)
        if not self.refused(answer, EXPECTED_REFUSALS):
            self.expected[player] -= amount
            self.withdrawals += amount

    async def stake(self, rng: random.Random) -> None:
        table = f"{self.run_id}-t{rng.randrange(self.tables)}"
        round_ = self.rounds.get(table)
        if round_ is None or round_.closed:
            await asyncio.sleep(0.005)
            return
        round_.in_flight += 1  # before any await: the dealer waits for it to land
        try:
            items = [
                (
                    f"{round_.round_id}-{uuid.uuid4().hex[:8]}",
                    self.player(rng.randrange(self.players)),
                    rng.randint(1, 200),
                )
                for _ in range(rng.randint(1, 3))
            ]
            request = ws.PlaceStakesRequest(
                idempotency_key=uuid.uuid4().hex,
                table_id=table,
                round_id=round_.round_id,
                fencing_token=1,
                stakes=[
                    wallet_pb2.Stake(bet_id=b, player_id=p, amount=eur(a)) for b, p, a in items
                ],
            )
            answer = await self.call("PlaceStakes", request)
            assert isinstance(answer, ws.PlaceStakesResponse), answer
            for (bet, player, amount), result in zip(items, answer.results, strict=True):
                if result.status == wallet_pb2.STAKE_STATUS_ACCEPTED:
                    self.expected[player] -= amount
                    round_.bets[bet] = (player, amount)
                    self.counts["stakes accepted"] += 1
                else:
                    assert result.reason in {"INSUFFICIENT_FUNDS"}, result
                    self.counts["stakes rejected"] += 1
        finally:
            round_.in_flight -= 1

    async def dealer(self, table: str, rng: random.Random, stop: asyncio.Event) -> None:
        number = 0
        while not stop.is_set():
            number += 1
            round_ = Round(f"{table}-r{number}", table)
            self.rounds[table] = round_
            await asyncio.sleep(rng.uniform(0.02, 0.08))
            round_.closed = True
            while round_.in_flight:
                await asyncio.sleep(0.002)
            await self.close(round_, rng)

    async def close(self, round_: Round, rng: random.Random) -> None:
        if rng.random() < 0.2:
            request: Message = ws.RefundRoundRequest(
                idempotency_key=f"refund-{round_.round_id}",
                table_id=round_.table,
                round_id=round_.round_id,
                fencing_token=1,
                reason="void",
            )
            answer = await self.call("RefundRound", request)
            assert not isinstance(answer, ErrorDetails), answer
            for player, amount in round_.bets.values():
                self.expected[player] += amount
            self.counts["rounds refunded"] += 1
            return
        payouts = {
            bet: (player, amount * rng.choice([0, 0, 0, 1, 2, 2, 36]))
            for bet, (player, amount) in round_.bets.items()
        }
        request = ws.SettleRoundRequest(
            idempotency_key=f"settle-{round_.round_id}",
            table_id=round_.table,
            round_id=round_.round_id,
            fencing_token=1,
            payouts=[
                wallet_pb2.Payout(bet_id=b, player_id=p, payout=eur(a))
                for b, (p, a) in payouts.items()
            ],
        )
        answer = await self.call("SettleRound", request)
        assert not isinstance(answer, ErrorDetails), answer
        for player, amount in payouts.values():
            self.expected[player] += amount
        self.counts["rounds settled"] += 1

    async def client_loop(self, index: int, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed * 1000 + index)
        actions: list[tuple[float, Callable[[random.Random], Awaitable[None]]]] = [
            (0.25, self.deposit),
            (0.15, self.withdraw),
            (0.60, self.stake),
        ]
        while not stop.is_set():
            pick = rng.random()
            for weight, action in actions:
                if pick < weight:
                    await action(rng)
                    break
                pick -= weight

    async def auditor(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            (await snapshot(self.database_url)).assert_conserved()
            self.snapshots += 1
            try:
                reconciled = await self.client.reconcile()
            except grpc.aio.AioRpcError as error:
                if not (self.retry and error.code() in TRANSIENT):
                    raise
            else:
                assert reconciled.ok, reconciled
            await asyncio.sleep(0.05)

    async def run(
        self, seconds: float, clients: int, during: Callable[[], Awaitable[Any]] | None = None
    ) -> None:
        """Open the accounts, run every actor for ``seconds``, then close the last rounds."""
        await self.open_accounts()
        stop = asyncio.Event()
        tables = [f"{self.run_id}-t{i}" for i in range(self.tables)]
        actors = [
            *(self.client_loop(i, stop) for i in range(clients)),
            *(self.dealer(t, random.Random(self.seed + i), stop) for i, t in enumerate(tables)),
            self.auditor(stop),
        ]
        tasks = [asyncio.ensure_future(a) for a in actors]
        try:
            if during is not None:
                await asyncio.gather(asyncio.sleep(seconds), during())
            else:
                await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def check_books(self) -> None:
        """Every balance is what the answers add up to; the ledger conserves money."""
        for index in range(self.players):
            player = self.player(index)
            assert await self.client.balance(player) == self.expected[player], player
        final = await snapshot(self.database_url)
        final.assert_conserved()
        assert (final.deposits, final.withdrawals) == (self.deposits, self.withdrawals)
        assert final.balances.get("escrow", 0) == 0  # every round is closed
        reconciled = await self.client.reconcile()
        assert reconciled.ok, reconciled

    async def replay(self, rng: random.Random) -> None:
        """Send every recorded request again, in another order: same answers, no effect."""
        before = await snapshot(self.database_url)
        balances = {p: await self.client.balance(self.player(p)) for p in range(self.players)}
        entries = list(self.log)
        rng.shuffle(entries)
        recorded, self.log = self.log, []
        for start in range(0, len(entries), 64):
            chunk = entries[start : start + 64]
            answers = await asyncio.gather(*(self.call(e.method, e.request) for e in chunk))
            for entry, answer in zip(chunk, answers, strict=True):
                again = answer if isinstance(answer, ErrorDetails) else answer.SerializeToString()
                assert again == entry.answer, entry
        self.log = recorded
        assert await snapshot(self.database_url) == before
        for index, balance in balances.items():
            assert await self.client.balance(self.player(index)) == balance
