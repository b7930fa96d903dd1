"""Wires the game service: settings, storage, the event log, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from casino.game.v1 import game_service_pb2, game_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from casino_kit.sql import create_engine, database_url, migrate
from game_svc.events import EventLog
from game_svc.server import GameServicer, TableAdminServicer
from game_svc.store import Store


@dataclass(frozen=True)
class Settings:
    """``CASINO_*`` variables; without ``CASINO_DATABASE_URL`` the data is a SQLite file
    ``game.db`` in the data dir."""

    server: ServerSettings
    rng_addr: str = "127.0.0.1:50053"
    wallet_addr: str = "127.0.0.1:50054"
    database_url: str = ""


class Runtime:
    """What exists only between start and stop: the engine, the store, the event log."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self._parts: tuple[Store, EventLog] | None = None

    def parts(self) -> tuple[Store, EventLog]:
        if self._parts is None:
            raise RuntimeError("the game service is not started")
        return self._parts

    async def start(self) -> None:
        if self._parts is not None:
            return
        settings = self.settings
        url = database_url(settings.database_url, settings.server.data_dir, "game")
        self.engine = create_engine(url)
        await migrate(self.engine, "game_svc")
        store = Store(self.engine)
        self._parts = (store, EventLog(store))

    async def stop(self) -> None:
        self._parts = None
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None


def build(settings: Settings) -> ServiceSpec:
    runtime = Runtime(settings)
    services = game_service_pb2.DESCRIPTOR.services_by_name
    return ServiceSpec(
        name="game_svc",
        servicers=[
            Servicer(
                services["GameService"],
                GameServicer(runtime.parts),  # type: ignore[abstract]  # rest: UNIMPLEMENTED
                game_service_pb2_grpc.add_GameServiceServicer_to_server,
            ),
            Servicer(
                services["TableAdminService"],
                TableAdminServicer(runtime.parts),  # type: ignore[abstract]  # VoidRound: later
                game_service_pb2_grpc.add_TableAdminServiceServicer_to_server,
            ),
        ],
        dependencies={
            "rng": upstream(settings.rng_addr, settings.server, "casino.rng.v1"),
            "wallet": upstream(settings.wallet_addr, settings.server, "casino.wallet.v1"),
        },
        on_start=runtime.start,
        on_stop=runtime.stop,
    )
