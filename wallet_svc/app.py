"""Wires the wallet service: settings, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from wallet_svc.server import WalletAdminServicer, WalletServicer


@dataclass(frozen=True)
class Settings:
    server: ServerSettings


def build(settings: Settings) -> ServiceSpec:
    services = wallet_service_pb2.DESCRIPTOR.services_by_name
    return ServiceSpec(
        name="wallet_svc",
        servicers=[
            Servicer(
                services["WalletService"],
                WalletServicer(),
                wallet_service_pb2_grpc.add_WalletServiceServicer_to_server,
            ),
            Servicer(
                services["WalletAdminService"],
                WalletAdminServicer(),
                wallet_service_pb2_grpc.add_WalletAdminServiceServicer_to_server,
            ),
        ],
    )
