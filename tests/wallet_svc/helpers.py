"""A wallet process for tests, a small client over its two services, and ledger checks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from casino.common.v1 import common_pb2, limits_pb2
from casino.wallet.v1 import wallet_pb2, wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.platform import Platform
from casino_kit.errors import ErrorDetails, details_of

ws = wallet_service_pb2


def eur(amount: int, currency: str = "EUR") -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=currency)


def key() -> str:
    return uuid.uuid4().hex


class Client:
    """The two wallet services over one channel, with shorthands for the common calls."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.wallet = wallet_service_pb2_grpc.WalletServiceStub(channel)
        self.admin = wallet_service_pb2_grpc.WalletAdminServiceStub(channel)

    async def open(self, player: str, currency: str = "EUR") -> ws.OpenAccountResponse:
        request = ws.OpenAccountRequest(idempotency_key=key(), player_id=player, currency=currency)
        response: ws.OpenAccountResponse = await self.wallet.OpenAccount(request, timeout=10)
        return response

    async def deposit(
        self, player: str, amount: int, currency: str = "EUR", idem: str | None = None
    ) -> ws.DepositResponse:
        request = ws.DepositRequest(
            idempotency_key=idem or key(), player_id=player, amount=eur(amount, currency)
        )
        response: ws.DepositResponse = await self.wallet.Deposit(request, timeout=10)
        return response

    async def withdraw(
        self, player: str, amount: int, currency: str = "EUR"
    ) -> ws.WithdrawResponse:
        request = ws.WithdrawRequest(
            idempotency_key=key(), player_id=player, amount=eur(amount, currency)
        )
        response: ws.WithdrawResponse = await self.wallet.Withdraw(request, timeout=10)
        return response

    async def verify(self, player: str) -> None:
        await self.admin.SetKycStatus(
            ws.SetKycStatusRequest(
                idempotency_key=key(),
                player_id=player,
                status=wallet_pb2.KYC_STATUS_VERIFIED,
                operator_id="op-1",
                reason="documents checked",
            ),
            timeout=10,
        )

    async def stake(
        self,
        round_id: str,
        *stakes: tuple[str, str, int],
        table: str = "t1",
        token: int = 1,
        currency: str = "EUR",
    ) -> ws.PlaceStakesResponse:
        request = ws.PlaceStakesRequest(
            idempotency_key=key(),
            table_id=table,
            round_id=round_id,
            fencing_token=token,
            stakes=[
                wallet_pb2.Stake(bet_id=b, player_id=p, amount=eur(a, currency))
                for b, p, a in stakes
            ],
        )
        response: ws.PlaceStakesResponse = await self.wallet.PlaceStakes(request, timeout=10)
        return response

    async def settle(
        self,
        round_id: str,
        *payouts: tuple[str, str, int],
        table: str = "t1",
        token: int = 1,
    ) -> ws.SettleRoundResponse:
        request = ws.SettleRoundRequest(
            idempotency_key=key(),
            table_id=table,
            round_id=round_id,
            fencing_token=token,
            payouts=[
                wallet_pb2.Payout(bet_id=b, player_id=p, payout=eur(a)) for b, p, a in payouts
            ],
        )
        response: ws.SettleRoundResponse = await self.wallet.SettleRound(request, timeout=10)
        return response

    async def refund(
        self, round_id: str, table: str = "t1", token: int = 1
    ) -> ws.RefundRoundResponse:
        request = ws.RefundRoundRequest(
            idempotency_key=key(),
            table_id=table,
            round_id=round_id,
            fencing_token=token,
            reason="round voided",
        )
        response: ws.RefundRoundResponse = await self.wallet.RefundRound(request, timeout=10)
        return response

    async def balance(self, player: str, currency: str = "EUR") -> int:
        reply: ws.GetBalanceResponse = await self.wallet.GetBalance(
            ws.GetBalanceRequest(player_id=player, currency=currency), timeout=10
        )
        return reply.balance.amount_minor

    async def set_limit(
        self,
        player: str,
        kind: limits_pb2.MoneyLimitKind.ValueType,
        period: limits_pb2.LimitPeriod.ValueType,
        amount: int | None,
    ) -> ws.SetLimitsResponse:
        limit = limits_pb2.MoneyLimit(kind=kind, period=period)
        if amount is not None:
            limit.amount.CopyFrom(eur(amount))
        request = ws.SetLimitsRequest(
            idempotency_key=key(), player_id=player, currency="EUR", limits=[limit]
        )
        response: ws.SetLimitsResponse = await self.admin.SetLimits(request, timeout=10)
        return response

    async def reconcile(self) -> ws.ReconcileResponse:
        response: ws.ReconcileResponse = await self.admin.Reconcile(
            ws.ReconcileRequest(), timeout=30
        )
        return response


async def failure(call: Awaitable[Any]) -> ErrorDetails:
    """The error details of a call that must fail."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return details_of(error)
    raise AssertionError("the call succeeded")


@dataclass
class RunningWallet:
    platform: Platform
    client: Client
    database_url: str

    @property
    def address(self) -> str:
        return self.platform.addresses["wallet_svc"]


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'wallet').resolve()}.db"


@contextlib.asynccontextmanager
async def running_wallet(
    data_dir: Path, database_url: str = "", **env: str
) -> AsyncIterator[RunningWallet]:
    """A wallet process (SQLite in ``data_dir`` unless ``database_url``), and a client."""
    platform = Platform(
        data_dir=data_dir,
        packages=("wallet_svc",),
        free_ports=True,
        env={"CASINO_DATABASE_URL": database_url, "CASINO_DRAIN_S": "0", **env},
    )
    await platform.start()
    try:
        async with grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as channel:
            yield RunningWallet(platform, Client(channel), database_url or sqlite_url(data_dir))
    finally:
        codes = await platform.stop()
        assert codes == {"wallet_svc": 0}, codes


@dataclass(frozen=True)
class Snapshot:
    """The ledger as one consistent read sees it, straight from the tables."""

    balances: dict[str, int]  # by account kind
    players_below_zero: int
    closed_rounds_holding: int
    closed_rounds_with_escrow_postings: int
    deposits: int
    withdrawals: int
    unbalanced_transfers: int
    drifted_accounts: int
    rows: dict[str, int]

    @property
    def held_by_players_escrow_house(self) -> int:
        return sum(self.balances.get(k, 0) for k in ("player", "escrow", "house"))

    def assert_conserved(self) -> None:
        assert sum(self.balances.values()) == 0, self
        assert self.held_by_players_escrow_house == self.deposits - self.withdrawals, self
        assert self.players_below_zero == 0, self
        assert self.closed_rounds_holding == 0, self
        assert self.closed_rounds_with_escrow_postings == 0, self
        assert self.unbalanced_transfers == 0, self
        assert self.drifted_accounts == 0, self


SNAPSHOT_QUERIES = {
    "balances": "SELECT kind, SUM(balance) FROM accounts GROUP BY kind",
    "players_below_zero": "SELECT COUNT(*) FROM accounts WHERE kind = 'player' AND balance < 0",
    "closed_rounds_holding": "SELECT COUNT(*) FROM rounds WHERE state <> 'open' AND held <> 0",
    "closed_rounds_with_escrow_postings": (
        "SELECT COUNT(*) FROM (SELECT p.round_id FROM postings p JOIN accounts a"
        " ON a.id = p.account_id JOIN rounds r ON r.round_id = p.round_id"
        " WHERE a.kind = 'escrow' AND r.state <> 'open' GROUP BY p.round_id"
        " HAVING SUM(p.amount) <> 0) x"
    ),
    "deposits": (
        "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN accounts a ON a.id = p.account_id"
        " WHERE a.kind = 'player' AND p.kind = 'deposit'"
    ),
    "withdrawals": (
        "SELECT COALESCE(-SUM(p.amount), 0) FROM postings p JOIN accounts a"
        " ON a.id = p.account_id WHERE a.kind = 'player' AND p.kind = 'withdrawal'"
    ),
    "unbalanced_transfers": (
        "SELECT COUNT(*) FROM (SELECT transfer_id FROM postings GROUP BY transfer_id"
        " HAVING SUM(amount) <> 0) x"
    ),
    "drifted_accounts": (
        "SELECT COUNT(*) FROM accounts a LEFT JOIN (SELECT account_id, SUM(amount) AS s"
        " FROM postings GROUP BY account_id) p ON p.account_id = a.id"
        " WHERE a.balance <> COALESCE(p.s, 0)"
    ),
}
TABLES = ("players", "accounts", "rounds", "bets", "postings", "money_limits", "audit")


async def snapshot(database_url: str) -> Snapshot:
    """Read the ledger in one snapshot transaction, independently of the service's code."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            if database_url.startswith("postgresql"):
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                if not database_url.startswith("postgresql"):
                    await conn.exec_driver_sql("BEGIN")  # sqlite3 would only begin on a write
                values: dict[str, Any] = {}
                for name, sql in SNAPSHOT_QUERIES.items():
                    result = await conn.execute(text(sql))
                    if name == "balances":
                        values[name] = {k: int(v) for k, v in result.all()}
                    else:
                        values[name] = int(result.scalar_one())
                values["rows"] = {
                    t: int((await conn.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one())
                    for t in TABLES
                }
    finally:
        await engine.dispose()
    return Snapshot(**values)


def accepted(reply: ws.PlaceStakesResponse) -> list[str]:
    return [r.bet_id for r in reply.results if r.status == wallet_pb2.STAKE_STATUS_ACCEPTED]


def reasons(reply: ws.PlaceStakesResponse) -> Sequence[str]:
    return [r.reason for r in reply.results]
