"""Wires the session service: settings, upstream channels, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from casino.session.v1 import session_service_pb2, session_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.server import ServerSettings, Servicer, ServiceSpec


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    game_addr: str = "127.0.0.1:50052"
    wallet_addr: str = "127.0.0.1:50054"


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    """The player API; the RPCs answer UNIMPLEMENTED until the session issue lands."""


def build(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="session_svc",
        servicers=[
            Servicer(
                session_service_pb2.DESCRIPTOR.services_by_name["SessionService"],
                SessionServicer(),
                session_service_pb2_grpc.add_SessionServiceServicer_to_server,
            )
        ],
        dependencies={
            "game": upstream(settings.game_addr, settings.server, "casino.game.v1"),
            "wallet": upstream(settings.wallet_addr, settings.server, "casino.wallet.v1"),
        },
    )
