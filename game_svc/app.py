"""Wires the game service: settings, storage, the event log, table ownership, servicers."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from casino.game.v1 import game_service_pb2, game_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from casino_kit.settings import SettingsError
from casino_kit.sql import create_engine, database_url, migrate
from game_svc.clock import utcnow
from game_svc.events import EventLog
from game_svc.floor import Floor
from game_svc.leases import Leases, LocalLeases, RedisLeases
from game_svc.peers import Peers
from game_svc.server import GameServicer, Parts, TableAdminServicer
from game_svc.store import Store
from game_svc.upstreams import Rng, Wallet


@dataclass(frozen=True)
class Settings:
    """``CASINO_*`` variables; without ``CASINO_DATABASE_URL`` the data is a SQLite file
    ``game.db`` in the data dir. Without ``CASINO_REDIS_URL`` this one process owns every
    table; with it, replicas share tables through leases of ``lease_ttl_s``, so a dead
    owner's tables move within about that time."""

    server: ServerSettings
    rng_addr: str = "127.0.0.1:50053"
    wallet_addr: str = "127.0.0.1:50054"
    database_url: str = ""
    redis_url: str = ""
    lease_ttl_s: float = 5.0
    round_pause_s: float = 2.0
    advertise_addr: str = ""
    """Where the other replicas reach this one (default host:port); in Kubernetes, the pod IP."""
    peer_tls_name: str = ""
    """The name the replicas' shared certificate is checked against when they call each other."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.lease_ttl_s <= 60.0:
            raise SettingsError("CASINO_LEASE_TTL_S must be 1 to 60 seconds")
        if self.round_pause_s < 0:
            raise SettingsError("CASINO_ROUND_PAUSE_S must not be negative")


class Runtime:
    """What exists only between start and stop: the engine, the store, the tables we drive."""

    def __init__(self, settings: Settings, rng: grpc.aio.Channel, wallet: grpc.aio.Channel):
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self._channels = (rng, wallet)
        self._parts: Parts | None = None

    def parts(self) -> Parts:
        if self._parts is None:
            raise RuntimeError("the game service is not started")
        return self._parts

    def _address(self) -> str:
        server = self.settings.server
        host = server.host if server.host not in ("0.0.0.0", "::", "") else socket.gethostname()
        return self.settings.advertise_addr or f"{host}:{server.port}"

    def _leases(self) -> Leases:
        settings = self.settings
        if not settings.redis_url:
            return LocalLeases()
        return RedisLeases(settings.redis_url, self._address(), settings.lease_ttl_s)

    async def start(self) -> None:
        if self._parts is not None:
            return
        settings = self.settings
        url = database_url(settings.database_url, settings.server.data_dir, "game")
        self.engine = create_engine(url)
        await migrate(self.engine, "game_svc")
        store = Store(self.engine)
        log = EventLog(store)
        rng, wallet = self._channels
        floor = Floor(
            store,
            log,
            Rng(rng),
            Wallet(wallet),
            self._leases(),
            Peers(self._address(), settings.server, settings.peer_tls_name),
            utcnow,
            sweep_s=settings.lease_ttl_s / 4,
            pause_s=settings.round_pause_s,
        )
        self._parts = Parts(store, log, floor)
        await floor.sweep()
        floor.start()

    async def stop(self) -> None:
        if self._parts is not None:
            await self._parts.floor.stop()
            self._parts = None
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None


def build(settings: Settings) -> ServiceSpec:
    rng = upstream(settings.rng_addr, settings.server, "casino.rng.v1")
    wallet = upstream(settings.wallet_addr, settings.server, "casino.wallet.v1")
    runtime = Runtime(settings, rng, wallet)
    services = game_service_pb2.DESCRIPTOR.services_by_name
    return ServiceSpec(
        name="game_svc",
        servicers=[
            Servicer(
                services["GameService"],
                GameServicer(runtime.parts),
                game_service_pb2_grpc.add_GameServiceServicer_to_server,
            ),
            Servicer(
                services["TableAdminService"],
                TableAdminServicer(runtime.parts),
                game_service_pb2_grpc.add_TableAdminServiceServicer_to_server,
            ),
        ],
        dependencies={"rng": rng, "wallet": wallet},
        on_start=runtime.start,
        on_stop=runtime.stop,
    )
