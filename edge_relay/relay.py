"""The relay's state: the fan-out, its WebRTC viewers and the statistics the APIs report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import grpc
from aiortc import RTCConfiguration
from aiortc.stats import RTCOutboundRtpStreamStats, RTCRemoteInboundRtpStreamStats

from casino.ingest.v1 import ingest_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from casino_kit.errors import DomainError, NotFound
from casino_kit.logs import get_logger
from edge_relay.abr import Policy, choose
from edge_relay.broadcast import Broadcast
from edge_relay.fanout import Fanout
from edge_relay.viewer import VIDEO_CLOCK, Viewer, answer_viewer, parse_sdpfrag

log = get_logger(__name__)

AUDIO_RENDITION = "audio"
"""The rendition of a stream's Opus audio, as the ingest names it."""


@dataclass(frozen=True)
class ViewerFigures:
    """One viewer's statistics, from aiortc's RTCP-fed report."""

    viewer_id: str
    rendition: str
    rtt_ms: float
    jitter_ms: float
    packets_lost: int
    fraction_lost: float
    bitrate_bps: int
    packets_sent: int
    bytes_sent: int
    measured_at: float


async def _rtcp(viewer: Viewer) -> tuple[float, float, int, float, int, int]:
    """(rtt ms, jitter ms, lost, fraction lost, packets sent, bytes sent) from aiortc."""
    rtt = jitter = fraction = 0.0
    lost = sent = size = 0
    for stat in (await viewer.sender.getStats()).values():
        if isinstance(stat, RTCRemoteInboundRtpStreamStats):
            rtt = (stat.roundTripTime or 0.0) * 1000
            jitter = (stat.jitter or 0) * 1000 / VIDEO_CLOCK
            lost = stat.packetsLost or 0
            fraction = stat.fractionLost or 0.0
        elif isinstance(stat, RTCOutboundRtpStreamStats):
            sent, size = stat.packetsSent, stat.bytesSent
    return rtt, jitter, lost, fraction, sent, size


def percentile(samples: list[int], fraction: float) -> int:
    if not samples:
        return 0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Relay:
    """Viewers by id, over one fan-out; answers WHEP offers and reports statistics."""

    def __init__(
        self,
        relay_id: str,
        fanout: Fanout,
        configuration: RTCConfiguration,
        policy: Policy | None = None,
        adapt_every_s: float = 1.0,
    ) -> None:
        self.relay_id = relay_id
        self.policy = policy
        self.adapt_every_s = adapt_every_s
        self.adapting: asyncio.Task[None] | None = None
        self.ladders: dict[str, tuple[float, list[str]]] = {}
        self.fanout = fanout
        self.configuration = configuration
        self.viewers: dict[str, Viewer] = {}
        self.broadcasts: dict[tuple[str, str], Broadcast] = {}
        self.started_at = time.time()
        self._last_bytes: dict[str, tuple[float, int]] = {}

    async def add_viewer(
        self, stream_id: str, rendition: str, offer_sdp: str, adaptive: bool = False
    ) -> tuple[str, str]:
        """Answer ``offer_sdp`` for ``stream_id``/``rendition``; returns (viewer id, answer).

        An ``adaptive`` viewer is moved between renditions by its RTCP figures; one that
        named its rendition stays on it.
        """
        # NOT_FOUND before any peer exists; audio when the offer and the stream have it.
        probed = [await self._broadcast(stream_id, rendition)]
        if "\nm=audio " in offer_sdp:
            with contextlib.suppress(NotFound):
                probed.append(await self._broadcast(stream_id, AUDIO_RENDITION))
        try:
            viewer, answer = await answer_viewer(
                offer_sdp, stream_id, rendition, self.configuration, audio=len(probed) > 1
            )
        except BaseException:
            for broadcast in probed:
                broadcast.release_if_idle()
            raise
        viewer.adaptive = adaptive
        self.viewers[viewer.viewer_id] = viewer
        # Again: a broadcast may have ended while the answer was made.
        assert viewer.video is not None
        (await self._broadcast(stream_id, rendition)).join(viewer.video)
        if viewer.audio is not None:
            (await self._broadcast(stream_id, AUDIO_RENDITION)).join(viewer.audio)
        closed = asyncio.ensure_future(viewer.closed.wait())
        closed.add_done_callback(lambda _: self._forget(viewer))
        return viewer.viewer_id, answer

    async def _broadcast(self, stream_id: str, rendition: str) -> Broadcast:
        """The broadcast of (stream_id, rendition), subscribing upstream if there is none."""
        key = (stream_id, rendition)
        broadcast = self.broadcasts.get(key)
        if broadcast is None:
            sub = await self.fanout.subscribe(stream_id, rendition, with_gop=False)
            broadcast = self.broadcasts.get(key)  # another viewer may have made it meanwhile
            if broadcast is None:
                broadcast = self.broadcasts[key] = Broadcast(sub, self._idle)
            else:
                sub.close()
        return broadcast

    def _idle(self, broadcast: Broadcast) -> None:
        key = (broadcast.sub.stream.stream_id, broadcast.rendition)
        if self.broadcasts.get(key) is broadcast:
            del self.broadcasts[key]
        broadcast.task.cancel()

    def _forget(self, viewer: Viewer) -> None:
        self.viewers.pop(viewer.viewer_id, None)
        for out in (viewer.video, viewer.audio):
            if out is None:
                continue
            for broadcast in (out.broadcast, out.pending):
                if broadcast is not None:
                    broadcast.drop(out)

    def viewer(self, viewer_id: str) -> Viewer:
        viewer = self.viewers.get(viewer_id)
        if viewer is None:
            raise NotFound("VIEWER_NOT_FOUND", f"no viewer {viewer_id}")
        return viewer

    async def trickle(self, viewer_id: str, fragment: str) -> None:
        """Add the viewer's trickled ICE candidates (an SDP fragment, RFC 8840)."""
        viewer = self.viewer(viewer_id)
        remote = viewer.pc.remoteDescription
        ufrag, candidates, ended = parse_sdpfrag(fragment)
        if ufrag and remote is not None and f"a=ice-ufrag:{ufrag}" not in remote.sdp:
            raise ValueError("a new ice-ufrag is an ICE restart, which is not supported")
        for candidate in candidates:
            await viewer.pc.addIceCandidate(candidate)
        if ended:
            await viewer.pc.addIceCandidate(None)

    async def remove_viewer(self, viewer_id: str) -> None:
        viewer = self.viewer(viewer_id)
        self.viewers.pop(viewer_id, None)
        await viewer.close()

    async def figures(self, viewer_id: str) -> ViewerFigures:
        viewer = self.viewer(viewer_id)
        rtt, jitter, lost, fraction, sent, size = await _rtcp(viewer)
        now = time.time()
        before = self._last_bytes.get(viewer_id)
        self._last_bytes[viewer_id] = (now, size)
        span = now - before[0] if before else now - viewer.connected_at
        bitrate = int((size - (before[1] if before else 0)) * 8 / span) if span > 0 else 0
        return ViewerFigures(
            viewer_id, viewer.rendition, rtt, jitter, lost, fraction, bitrate, sent, size, now
        )

    def delay_percentiles_us(self) -> tuple[int, int]:
        samples = [d for v in self.viewers.values() for d in v.delays_us]
        return percentile(samples, 0.5), percentile(samples, 0.99)

    async def start(self) -> None:
        if self.adapting is None:
            self.adapting = asyncio.ensure_future(self._adapt_forever())

    async def _adapt_forever(self) -> None:
        """Every viewer's RTCP figures each period: kept for metrics, and used to adapt."""
        while True:
            await asyncio.sleep(self.adapt_every_s)
            for viewer in list(self.viewers.values()):
                try:
                    await self._adapt(viewer)
                except (DomainError, grpc.aio.AioRpcError) as error:
                    log.info("no rendition switch", viewer_id=viewer.viewer_id, error=str(error))
                except Exception:
                    # A background loop must outlive one viewer's surprise; it is logged.
                    log.exception("viewer figures failed", viewer_id=viewer.viewer_id)

    async def _ladder(self, stream_id: str) -> list[str]:
        """The stream's H.264 renditions, tallest first, from upstream (cached a few seconds)."""
        cached = self.ladders.get(stream_id)
        if cached is not None and time.monotonic() - cached[0] < 5.0:
            return cached[1]
        stub = ingest_service_pb2_grpc.MediaServiceStub(self.fanout.channel)
        listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest(), timeout=5)
        ladder = [
            s.rendition
            for s in sorted(listed.streams, key=lambda s: (-s.height, s.rendition != "source"))
            if s.stream_id == stream_id and s.codec == ingest_pb2.CODEC_H264
        ]
        self.ladders[stream_id] = (time.monotonic(), ladder)
        return ladder

    async def _adapt(self, viewer: Viewer) -> None:
        viewer.rtcp = await _rtcp(viewer)
        rtt, _, _, fraction, _, _ = viewer.rtcp
        if self.policy is None or viewer.state != "connected":
            return
        if not viewer.adaptive or rtt <= 0:
            return  # no receiver report yet
        ladder = await self._ladder(viewer.stream_id)
        decision = choose(self.policy, ladder, viewer.rendition, fraction, rtt, viewer.good_checks)
        viewer.good_checks = decision.good_checks
        if decision.rendition != viewer.rendition:
            assert viewer.video is not None
            (await self._broadcast(viewer.stream_id, decision.rendition)).join(viewer.video)
            log.info(
                "rendition switch",
                viewer_id=viewer.viewer_id,
                old=viewer.rendition,
                new=decision.rendition,
                rtt_ms=rtt,
                fraction_lost=fraction,
            )
            viewer.rendition = decision.rendition

    async def stop(self) -> None:
        if self.adapting is not None:
            self.adapting.cancel()
        await asyncio.gather(*(v.close() for v in list(self.viewers.values())))
        self.viewers.clear()
        await asyncio.gather(*(b.stop() for b in list(self.broadcasts.values())))
        self.broadcasts.clear()
        await self.fanout.stop()
