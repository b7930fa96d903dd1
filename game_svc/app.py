"""Wires the game service: settings, upstream channels, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from casino.game.v1 import game_service_pb2, game_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.server import ServerSettings, Servicer, ServiceSpec


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    rng_addr: str = "127.0.0.1:50053"
    wallet_addr: str = "127.0.0.1:50054"


class GameServicer(game_service_pb2_grpc.GameServiceServicer):
    """Tables and rounds; the RPCs answer UNIMPLEMENTED until the game issue lands."""


class TableAdminServicer(game_service_pb2_grpc.TableAdminServiceServicer):
    """Operator controls; the RPCs answer UNIMPLEMENTED until the game issue lands."""


def build(settings: Settings) -> ServiceSpec:
    services = game_service_pb2.DESCRIPTOR.services_by_name
    return ServiceSpec(
        name="game_svc",
        servicers=[
            Servicer(
                services["GameService"],
                GameServicer(),
                game_service_pb2_grpc.add_GameServiceServicer_to_server,
            ),
            Servicer(
                services["TableAdminService"],
                TableAdminServicer(),
                game_service_pb2_grpc.add_TableAdminServiceServicer_to_server,
            ),
        ],
        dependencies={
            "rng": upstream(settings.rng_addr, settings.server, "casino.rng.v1"),
            "wallet": upstream(settings.wallet_addr, settings.server, "casino.wallet.v1"),
        },
    )
