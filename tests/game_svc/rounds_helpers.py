"""Driving real game, RNG and wallet processes: tables, players, bets, the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import grpc

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.demo import table_config
from casino_cli.platform import Platform
from tests.conftest import postgres_database

CURRENCY = "EUR"


@contextlib.asynccontextmanager
async def on_postgres(
    data_dir: Path, packages: tuple[str, ...], **service_env: Mapping[str, str]
) -> AsyncIterator[Platform]:
    """Real processes with a fresh PostgreSQL database for the wallet and the game each
    (their schemas are their own), short pauses between rounds, and extra settings per
    service."""
    async with postgres_database() as wallet_db, postgres_database() as game_db:
        env: dict[str, dict[str, str]] = {
            "wallet_svc": {"CASINO_DATABASE_URL": wallet_db},
            "game_svc": {"CASINO_DATABASE_URL": game_db},
        }
        for package, extra in service_env.items():
            env.setdefault(package, {}).update(extra)
        running = Platform(
            data_dir=data_dir,
            packages=packages,
            free_ports=True,
            env={"CASINO_ROUND_PAUSE_S": "0.2"},
            service_env=env,
        )
        await running.start()
        try:
            yield running
        finally:
            await running.stop()


def eur(amount: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=CURRENCY)


def key() -> str:
    return uuid.uuid4().hex


def rng_table(
    game: int = common_pb2.GAME_TYPE_ROULETTE, name: str = "RNG table", window_s: int = 5
) -> game_pb2.TableConfig:
    """The demo's table: every bet type of the game, 1.00 to 500.00 EUR per spot."""
    return table_config(name, game, window_s)


def red(stake: int = 1_000) -> tuple[bet_pb2.BetSpot, int]:
    return bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_RED), stake


def straight(number: int, stake: int = 100) -> tuple[bet_pb2.BetSpot, int]:
    return bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_STRAIGHT, numbers=[number]), stake


class Casino:
    """Clients of one game service and its wallet."""

    def __init__(self, game: grpc.aio.Channel, wallet: grpc.aio.Channel) -> None:
        self.game = game_service_pb2_grpc.GameServiceStub(game)
        self.admin = game_service_pb2_grpc.TableAdminServiceStub(game)
        self.wallet = wallet_service_pb2_grpc.WalletServiceStub(wallet)
        self.wallet_admin = wallet_service_pb2_grpc.WalletAdminServiceStub(wallet)

    async def table(self, config: game_pb2.TableConfig) -> str:
        created: game_service_pb2.CreateTableResponse = await self.admin.CreateTable(
            game_service_pb2.CreateTableRequest(
                idempotency_key=key(), operator_id="op", reason="test", config=config
            ),
            timeout=10,
        )
        return created.table_id

    async def player(self, deposit: int) -> str:
        player = f"p-{key()[:12]}"
        await self.fund(player, deposit)
        return player

    async def fund(self, player: str, deposit: int) -> None:
        """Open the player's account and deposit ``deposit`` (if not zero)."""
        await self.wallet.OpenAccount(
            wallet_service_pb2.OpenAccountRequest(
                idempotency_key=key(), player_id=player, currency=CURRENCY
            ),
            timeout=10,
        )
        if deposit:
            await self.wallet.Deposit(
                wallet_service_pb2.DepositRequest(
                    idempotency_key=key(), player_id=player, amount=eur(deposit)
                ),
                timeout=10,
            )

    async def balance(self, player: str) -> int:
        answer: wallet_service_pb2.GetBalanceResponse = await self.wallet.GetBalance(
            wallet_service_pb2.GetBalanceRequest(player_id=player, currency=CURRENCY), timeout=10
        )
        return answer.balance.amount_minor

    async def reconcile(self) -> wallet_service_pb2.ReconcileResponse:
        response: wallet_service_pb2.ReconcileResponse = await self.wallet_admin.Reconcile(
            wallet_service_pb2.ReconcileRequest(), timeout=30
        )
        return response

    async def place(
        self,
        table_id: str,
        round_id: str,
        bets: Sequence[tuple[str, tuple[bet_pb2.BetSpot, int]]],
        bet_ids: Sequence[str] | None = None,
    ) -> list[game_pb2.BetResult]:
        """One batch on a fresh PlaceBets stream; ``bets`` are (player, (spot, stake))."""
        ids = list(bet_ids) if bet_ids is not None else [key() for _ in bets]
        request = game_service_pb2.PlaceBetsRequest(
            idempotency_key=key(),
            batch_id=key(),
            table_id=table_id,
            round_id=round_id,
            bets=[
                game_pb2.Bet(bet_id=bet_id, player_id=player, spot=spot, stake=eur(stake))
                for bet_id, (player, (spot, stake)) in zip(ids, bets, strict=True)
            ],
        )

        async def one() -> AsyncIterator[game_service_pb2.PlaceBetsRequest]:
            yield request

        async for response in self.game.PlaceBets(one(), timeout=20):
            return list(response.results)
        raise AssertionError("PlaceBets answered nothing")


class Events:
    """A table's event stream, read in the background, with waits on what arrives."""

    def __init__(self, game: game_service_pb2_grpc.GameServiceStub, table_id: str) -> None:
        self.seen: list[table_event_pb2.TableEvent] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(self._read(game, table_id))

    async def _read(self, game: game_service_pb2_grpc.GameServiceStub, table_id: str) -> None:
        next_sequence = 1
        while True:
            try:
                stream = game.Subscribe(
                    game_service_pb2.SubscribeRequest(
                        table_id=table_id, from_sequence=next_sequence
                    )
                )
                async for message in stream:
                    assert message.event.sequence == next_sequence, "a gap or a duplicate"
                    next_sequence += 1
                    async with self._changed:
                        self.seen.append(message.event)
                        self._changed.notify_all()
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.2)  # the service restarts: resume where we were

    async def wait_for(
        self, match: Callable[[table_event_pb2.TableEvent], bool], timeout: float = 30
    ) -> table_event_pb2.TableEvent:
        async def found() -> table_event_pb2.TableEvent:
            async with self._changed:
                while True:
                    for event in self.seen:
                        if match(event):
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(found(), timeout)

    def of(self, round_id: str, payload: str) -> list[table_event_pb2.TableEvent]:
        return [
            e for e in self.seen if e.round_id == round_id and e.WhichOneof("payload") == payload
        ]

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


def payload(name: str, round_id: str = "") -> Callable[[table_event_pb2.TableEvent], bool]:
    def match(event: table_event_pb2.TableEvent) -> bool:
        return event.WhichOneof("payload") == name and (not round_id or event.round_id == round_id)

    return match


def first_of(round_id: str) -> Callable[[table_event_pb2.TableEvent], bool]:
    """The round's first DecisionRequested, or its end when nobody had to decide."""
    return lambda e: (
        e.round_id == round_id
        and e.WhichOneof("payload")
        in (
            "decision_requested",
            "round_settled",
        )
    )
