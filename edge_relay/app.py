"""Wires the edge relay: settings, upstream media channel, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from casino.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from casino.relay.v1 import relay_service_pb2, relay_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.server import ServerSettings, Servicer, ServiceSpec


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    ingest_addr: str = "127.0.0.1:50055"


class RelayAdminServicer(relay_service_pb2_grpc.RelayAdminServiceServicer):
    """Viewer and relay stats; UNIMPLEMENTED until the media issue lands."""


class MediaServicer(ingest_service_pb2_grpc.MediaServiceServicer):
    """Serves the media stream onward to further relays; UNIMPLEMENTED until the media issue."""


def build(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="edge_relay",
        servicers=[
            Servicer(
                relay_service_pb2.DESCRIPTOR.services_by_name["RelayAdminService"],
                RelayAdminServicer(),
                relay_service_pb2_grpc.add_RelayAdminServiceServicer_to_server,
            ),
            Servicer(
                ingest_service_pb2.DESCRIPTOR.services_by_name["MediaService"],
                MediaServicer(),
                ingest_service_pb2_grpc.add_MediaServiceServicer_to_server,
            ),
        ],
        dependencies={
            "ingest": upstream(settings.ingest_addr, settings.server, "casino.ingest.v1"),
        },
    )
