"""Wires the wallet service: settings, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from casino_kit.sql import database_url
from wallet_svc.server import WalletAdminServicer, WalletServicer
from wallet_svc.service import Wallet


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    database_url: str = ""
    """SQLAlchemy async URL (``postgresql+asyncpg://...``); empty: SQLite in CASINO_DATA_DIR."""
    limit_cooling_s: float = 86_400.0
    """How long a raised or removed responsible-gaming limit waits before it applies."""
    limits_timezone: str = "UTC"
    """The jurisdiction's time zone: limit days, weeks and months start at its midnight."""
    batch_window_ms: float = 0.0
    """Extra wait for more requests before a batch runs; 0 takes whatever is queued."""
    batch_max: int = 1000
    """Most requests in one transaction."""
    writers: int = 1
    """Batches committed at once on PostgreSQL, each on its own connection (SQLite, with one
    write lock, always uses 1). Two help large batched calls (+7-20% stakes/s) but cost
    single-stake calls more (about -25% stakes/s at 16 and 256 clients: batches halve, and
    stakes on one round wait for each other's row locks), so one is the default."""
    db_pool_size: int = 10


def build(settings: Settings) -> ServiceSpec:
    wallet = Wallet(
        database_url(settings.database_url, settings.server.data_dir, "wallet"),
        pool_size=settings.db_pool_size,
        zone=ZoneInfo(settings.limits_timezone),
        cooling_s=settings.limit_cooling_s,
        window_s=settings.batch_window_ms / 1000,
        max_batch=settings.batch_max,
        writers=settings.writers,
    )
    services = wallet_service_pb2.DESCRIPTOR.services_by_name
    return ServiceSpec(
        name="wallet_svc",
        servicers=[
            Servicer(
                services["WalletService"],
                WalletServicer(wallet),
                wallet_service_pb2_grpc.add_WalletServiceServicer_to_server,
            ),
            Servicer(
                services["WalletAdminService"],
                WalletAdminServicer(wallet),
                wallet_service_pb2_grpc.add_WalletAdminServiceServicer_to_server,
            ),
        ],
        on_start=wallet.start,
        on_stop=wallet.stop,
        quiet_gc=True,
    )
