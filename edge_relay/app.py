"""Wires the edge relay: settings, upstream media channel, servicers, lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casino.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from casino.relay.v1 import relay_service_pb2, relay_service_pb2_grpc
from casino_kit.channels import open_channel, service_config
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from edge_relay import metrics
from edge_relay.abr import Policy
from edge_relay.fanout import Fanout
from edge_relay.relay import Relay
from edge_relay.server import MediaServicer, RelayAdminServicer
from edge_relay.viewer import ice_configuration
from edge_relay.whep import WhepOptions, WhepServer, whep_app

# Media messages are access units: a keyframe of a high-bitrate stream exceeds gRPC's 4 MB
# default only in extreme cases, but the limit must not be the thing that breaks a stream.
MEDIA_CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 32 << 20),)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    # The MediaService this relay subscribes to: the ingest, or an upstream relay (chaining).
    ingest_addr: str = "127.0.0.1:50055"
    # WHEP (HTTP) port on the server's host; 0 (the default) takes a free port and logs it,
    # so several relays can run on one host. Deployments set it (8890 in the examples).
    whep_port: int = 0
    # Bearer token viewers must present to WHEP; empty: no token.
    whep_token: str = ""
    # Access-Control-Allow-Origin for browsers.
    whep_cors_origin: str = "*"
    # ICE servers (stun:/turn: URLs, comma separated) for the relay's peers and announced to
    # viewers in Link headers. Empty: host candidates only, never a public default.
    ice_servers: tuple[str, ...] = ()
    ice_username: str = ""
    ice_credential: str = ""
    # "all", or "relay" to use TURN-relayed candidates only.
    ice_transport_policy: str = "all"
    # Access units a viewer or downstream relay may fall behind before skipping to a keyframe.
    subscriber_queue: int = 60
    # Seconds an upstream subscription stays open after its last viewer left.
    upstream_linger_s: float = 5.0
    # Rendition switching from RTCP: down when loss or RTT exceed these, up after good checks.
    abr: bool = True
    abr_max_fraction_lost: float = 0.05
    abr_max_rtt_ms: float = 400.0
    abr_up_after: int = 5
    # Count codec work in this process and report it at /stats (tests prove no transcoding).
    codec_probe: bool = False
    # This relay's id in statistics; empty: a random one.
    relay_id: str = ""


def build(settings: Settings) -> ServiceSpec:
    counts = None
    if settings.codec_probe:
        from edge_relay import probe

        counts = probe.install()
    channel = open_channel(
        settings.ingest_addr,
        settings.server,
        config=service_config("casino.ingest.v1"),
        options=MEDIA_CHANNEL_OPTIONS,
    )
    fanout = Fanout(
        channel,
        settings.ingest_addr,
        subscriber_queue=settings.subscriber_queue,
        linger_s=settings.upstream_linger_s,
    )
    ice = ice_configuration(
        settings.ice_servers,
        settings.ice_username,
        settings.ice_credential,
        settings.ice_transport_policy,
    )
    policy = (
        Policy(settings.abr_max_fraction_lost, settings.abr_max_rtt_ms, settings.abr_up_after)
        if settings.abr
        else None
    )
    relay = Relay(settings.relay_id or uuid.uuid4().hex, fanout, ice, policy)
    metrics.register(relay)
    options = WhepOptions(
        token=settings.whep_token,
        cors_origin=settings.whep_cors_origin,
        ice_servers=settings.ice_servers,
        ice_username=settings.ice_username,
        ice_credential=settings.ice_credential,
        codec_counts=counts,
    )
    whep = WhepServer(whep_app(relay, options), settings.server.host, settings.whep_port)

    async def start() -> None:
        await relay.start()
        await whep.start()

    async def stop() -> None:
        await whep.stop()
        await relay.stop()

    return ServiceSpec(
        name="edge_relay",
        servicers=[
            Servicer(
                relay_service_pb2.DESCRIPTOR.services_by_name["RelayAdminService"],
                RelayAdminServicer(relay, settings.ingest_addr),
                relay_service_pb2_grpc.add_RelayAdminServiceServicer_to_server,
            ),
            Servicer(
                ingest_service_pb2.DESCRIPTOR.services_by_name["MediaService"],
                MediaServicer(relay),
                ingest_service_pb2_grpc.add_MediaServiceServicer_to_server,
            ),
        ],
        dependencies={"ingest": channel},
        on_start=start,
        on_stop=stop,
        quiet_gc=True,
    )
