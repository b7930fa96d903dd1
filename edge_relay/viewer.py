"""One WebRTC viewer: an aiortc peer whose media goes out through ``RtpWriter``s.

The relay's broadcast packetises each access unit once and writes the packets for every
viewer (see ``broadcast``); the viewer's own aiortc sender keeps a placeholder track, so
its send loop never packs or encodes anything. No decoder and no encoder exist for a
viewer, only RTP headers and SRTP.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from casino_kit.media.gop import Unit
from edge_relay.rtp_out import RtpWriter

if TYPE_CHECKING:
    from edge_relay.broadcast import Broadcast

VIDEO_CLOCK = 90000
CAPTURE_CHANNEL = "capture"
"""Label of the data channel on which a viewer receives each frame's capture time."""


class PlaceholderTrack(MediaStreamTrack):
    """Holds a sender's place: its ``recv()`` only ends, so aiortc's per-viewer send loop
    waits here while the broadcast writes the packets."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> None:  # type: ignore[override]
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._stopped.set()
        super().stop()


@dataclass(eq=False)
class Outbound:
    """One media section of a viewer: its RTP writer, the broadcast it receives from and
    the one it starts on at the next keyframe."""

    viewer: Viewer
    kind: str
    writer: RtpWriter
    broadcast: Broadcast | None = None
    pending: Broadcast | None = None


@dataclass(eq=False)
class Viewer:
    """A viewer's peer connection, its video (and audio) section and what the admin API
    reports."""

    viewer_id: str
    stream_id: str
    rendition: str
    pc: RTCPeerConnection
    tracks: list[PlaceholderTrack] = field(default_factory=list)
    video: Outbound | None = None
    audio: Outbound | None = None
    channel: RTCDataChannel | None = None
    connected_at: float = field(default_factory=time.time)
    state: str = "connecting"
    delays_us: deque[int] = field(default_factory=lambda: deque(maxlen=1000))
    good_checks: int = 0
    adaptive: bool = False
    # The latest (rtt ms, jitter ms, lost, fraction lost, packets sent, bytes sent).
    rtcp: tuple[float, float, int, float, int, int] = (0.0, 0.0, 0, 0.0, 0, 0)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def sender(self) -> RTCRtpSender:
        assert self.video is not None
        return self.video.writer.sender

    def sent(self, unit: Unit, rtp_timestamp: int, pts_90k: int) -> None:
        """A video unit's packets went out: the delay figure and the capture-time message."""
        now_ns = time.time_ns()
        if unit.arrived_ns:
            self.delays_us.append((now_ns - unit.arrived_ns) // 1000)
        if self.channel is None or self.channel.readyState != "open":
            return
        message = {
            "rtp_timestamp": rtp_timestamp,
            "pts_90k": pts_90k,
            "capture_time_us": unit.capture_time_us,
            "relay_sent_us": now_ns // 1000,
            "sequence": unit.sequence,
            "keyframe": unit.keyframe,
        }
        self.channel.send(json.dumps(message))

    async def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for track in self.tracks:
            track.stop()
        await self.pc.close()
        self.state = "disconnected"


def parse_sdpfrag(fragment: str) -> tuple[str, list[RTCIceCandidate], bool]:
    """(ice-ufrag, candidates by media section, end-of-candidates) of a trickle fragment."""
    ufrag, mid, candidates, ended = "", "0", [], False
    for line in fragment.splitlines():
        line = line.strip()
        if line.startswith("a=ice-ufrag:"):
            ufrag = line.removeprefix("a=ice-ufrag:")
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:")
        elif line.startswith("a=candidate:"):
            value = line.removeprefix("a=candidate:")
            try:
                if len(value.split()) < 8:  # aiortc only asserts it
                    raise ValueError
                candidate = candidate_from_sdp(value)
            except ValueError:
                raise ValueError(f"bad candidate line: {line[:80]}") from None
            candidate.sdpMid = mid
            candidates.append(candidate)
        elif line == "a=end-of-candidates":
            ended = True
    return ufrag, candidates, ended


def h264_codecs() -> list[RTCRtpCodecCapability]:
    """aiortc's H.264 codecs with packetisation mode 1 (FU-A), and RTX for them."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [
        c
        for c in codecs
        if c.mimeType.lower() == "video/rtx"
        or c.mimeType.lower() == "video/h264"
        and c.parameters.get("packetization-mode") == "1"
    ]


def opus_codecs() -> list[RTCRtpCodecCapability]:
    """aiortc's Opus codec: the audio the ingest passes through unchanged."""
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    return [c for c in codecs if c.mimeType.lower() == "audio/opus"]


def ice_configuration(
    urls: tuple[str, ...], username: str, credential: str, policy: str = "all"
) -> RTCConfiguration:
    """An explicit ICE server list: never aiortc's default public STUN host.

    ``policy`` "relay" gathers TURN candidates only (every packet goes through the TURN
    server), as a relay behind a strict firewall needs.
    """
    servers = [
        RTCIceServer(
            urls=url,
            username=username or None if url.startswith("turn") else None,
            credential=credential or None if url.startswith("turn") else None,
        )
        for url in urls
    ]
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy(policy))


def _outbound(viewer: Viewer, kind: str, codecs: list[RTCRtpCodecCapability]) -> Outbound:
    """A sendonly transceiver of ``kind`` with a placeholder track and a writer."""
    track = PlaceholderTrack(kind)
    # The transceiver exists before the offer is applied, so the offer's section of that
    # kind binds to it and only the codec of the packets can be negotiated.
    transceiver = viewer.pc.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(codecs)
    viewer.tracks.append(track)
    return Outbound(viewer, kind, RtpWriter(transceiver))


async def answer_viewer(
    offer_sdp: str,
    stream_id: str,
    rendition: str,
    configuration: RTCConfiguration,
    audio: bool = False,
) -> tuple[Viewer, str]:
    """Answer a WHEP offer: H.264 video, and Opus audio when ``audio`` and the offer has an
    audio section; returns the answer SDP."""
    pc = RTCPeerConnection(configuration=configuration)
    viewer = Viewer(uuid.uuid4().hex, stream_id, rendition, pc)
    try:
        viewer.video = _outbound(viewer, "video", h264_codecs())
        if audio and "\nm=audio " in offer_sdp:
            viewer.audio = _outbound(viewer, "audio", opus_codecs())

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == CAPTURE_CHANNEL:
                viewer.channel = channel

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected":
                viewer.state = "connected"
            elif state in ("failed", "closed"):
                await viewer.close()

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for out in (viewer.video, viewer.audio):
            if out is not None and out.writer.transceiver.mid is None:
                raise ValueError(f"the offer has no {out.kind} section")
        await pc.setLocalDescription(await pc.createAnswer())
        for out in (viewer.video, viewer.audio):
            if out is not None:
                out.writer.bind()
    except BaseException:
        await pc.close()
        raise
    return viewer, pc.localDescription.sdp
