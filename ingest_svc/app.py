"""Wires the ingest service: settings, upstream channel, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from casino.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.server import ServerSettings, Servicer, ServiceSpec


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    game_addr: str = "127.0.0.1:50052"


class StudioServicer(ingest_service_pb2_grpc.StudioServiceServicer):
    """Studio event streams; the RPCs answer UNIMPLEMENTED until the studio issue lands."""


class MediaServicer(ingest_service_pb2_grpc.MediaServiceServicer):
    """Media contribution and fan-out; UNIMPLEMENTED until the media issue lands."""


def build(settings: Settings) -> ServiceSpec:
    services = ingest_service_pb2.DESCRIPTOR.services_by_name
    return ServiceSpec(
        name="ingest_svc",
        servicers=[
            Servicer(
                services["StudioService"],
                StudioServicer(),
                ingest_service_pb2_grpc.add_StudioServiceServicer_to_server,
            ),
            Servicer(
                services["MediaService"],
                MediaServicer(),
                ingest_service_pb2_grpc.add_MediaServiceServicer_to_server,
            ),
        ],
        dependencies={
            "game": upstream(settings.game_addr, settings.server, "casino.game.v1"),
        },
    )
