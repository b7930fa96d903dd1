"""Wires the RNG service: settings, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from casino.rng.v1 import rng_service_pb2, rng_service_pb2_grpc
from casino_kit.server import ServerSettings, Servicer, ServiceSpec


@dataclass(frozen=True)
class Settings:
    server: ServerSettings


class RngServicer(rng_service_pb2_grpc.RngServiceServicer):
    """Commit-reveal draws; the RPCs answer UNIMPLEMENTED until the RNG issue lands."""


def build(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="rng_svc",
        servicers=[
            Servicer(
                rng_service_pb2.DESCRIPTOR.services_by_name["RngService"],
                RngServicer(),
                rng_service_pb2_grpc.add_RngServiceServicer_to_server,
            )
        ],
    )
