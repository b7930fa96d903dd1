"""Wires the ingest service: settings, upstream channel, servicers, lifecycle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from casino.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.logs import get_logger
from casino_kit.media.hub import MediaHub
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from casino_kit.settings import SettingsError
from ingest_svc.ladder import LadderService
from ingest_svc.media_server import MediaServicer
from ingest_svc.media_source import Listen, MediaListener
from ingest_svc.studios import StudioAuth, parse_studio_keys

log = get_logger(__name__)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    game_addr: str = "127.0.0.1:50052"
    # MPEG-TS listeners, comma separated: "stream_id=tcp://host:port" or "...=udp://host:port".
    mpegts_listen: tuple[str, ...] = ()
    # RTMP listeners (the studio publishes), comma separated: "stream_id=rtmp://host:port/app/key".
    rtmp_listen: tuple[str, ...] = ()
    # Renditions encoded from each source H.264 stream (the height names them): "720p,360p".
    # Empty: pass-through only. Rungs taller than the source are skipped.
    ladder: tuple[str, ...] = ()
    # Access units a subscriber may fall behind before it skips to the next keyframe.
    subscriber_queue: int = 120
    # Studios' credentials and streams, JSON (see ingest_svc/studios.py), or a file of it.
    studio_keys: str = ""
    studio_keys_file: Path | None = None


def studio_auth(settings: Settings) -> StudioAuth:
    try:
        text = (
            settings.studio_keys_file.read_text()
            if settings.studio_keys_file is not None
            else settings.studio_keys
        )
        studios = parse_studio_keys(text)
    except (ValueError, OSError) as error:
        raise SettingsError(f"CASINO_STUDIO_KEYS: {error}") from None
    if not studios:
        log.warning("no studio keys configured: every gRPC Publish will be refused")
    return StudioAuth(studios)


class StudioServicer(ingest_service_pb2_grpc.StudioServiceServicer):
    """Studio event streams; the RPCs answer UNIMPLEMENTED until the studio issue lands."""


class MediaContribution:
    """The hub, the MPEG-TS and RTMP listeners feeding it, and the rendition ladder."""

    def __init__(self, settings: Settings) -> None:
        self.hub = MediaHub(subscriber_queue=settings.subscriber_queue)
        entries = (*settings.mpegts_listen, *settings.rtmp_listen)
        self.listens = [Listen.parse(entry) for entry in entries]
        self.listeners: list[MediaListener] = []
        self.ladder = LadderService(self.hub, settings.ladder)

    async def start(self) -> None:
        if self.listeners:
            return
        loop = asyncio.get_running_loop()
        self.listeners = [MediaListener(listen, self.hub, loop) for listen in self.listens]
        for listener in self.listeners:
            listener.start()

    async def stop(self) -> None:
        await asyncio.gather(*(listener.stop() for listener in self.listeners))
        await self.ladder.stop()
        self.hub.stop()


def build(settings: Settings) -> ServiceSpec:
    services = ingest_service_pb2.DESCRIPTOR.services_by_name
    media = MediaContribution(settings)
    return ServiceSpec(
        name="ingest_svc",
        servicers=[
            Servicer(
                services["StudioService"],
                StudioServicer(),  # type: ignore[abstract]  # its base answers UNIMPLEMENTED
                ingest_service_pb2_grpc.add_StudioServiceServicer_to_server,
            ),
            Servicer(
                services["MediaService"],
                MediaServicer(media.hub, studio_auth(settings)),
                ingest_service_pb2_grpc.add_MediaServiceServicer_to_server,
            ),
        ],
        dependencies={
            "game": upstream(settings.game_addr, settings.server, "casino.game.v1"),
        },
        on_start=media.start,
        on_stop=media.stop,
    )
