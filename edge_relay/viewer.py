"""One WebRTC viewer: an aiortc peer whose video sender packetises pre-encoded access units.

``PacketTrack.recv()`` returns ``av.Packet``s, so aiortc's sender takes its ``pack()`` path:
no decoder and no encoder exist for a viewer, only RTP packetisation and SRTP. Each viewer
reads its own bounded hub cursor, so a stalled viewer only drops its own frames.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from casino_kit.logs import get_logger
from casino_kit.media.gop import Params, Unit
from casino_kit.media.hub import StreamEnded, Subscription

log = get_logger(__name__)

VIDEO_CLOCK = 90000
CAPTURE_CHANNEL = "capture"
"""Label of the data channel on which a viewer receives each frame's capture time."""


def has_parameter_sets(annexb: bytes) -> bool:
    """Whether an Annex-B access unit carries an SPS (NAL type 7) in band."""
    i = annexb.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(annexb):
        if annexb[i + 3] & 0x1F == 7:
            return True
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return False


class PacketTrack(MediaStreamTrack):
    """A video track of encoded packets from one hub subscription, starting at a keyframe."""

    kind = "video"

    def __init__(self, sub: Subscription, on_unit: Callable[[Unit, int], None]) -> None:
        super().__init__()
        self.sub = sub
        self.on_unit = on_unit
        self.params: Params | None = None
        self.started = False
        self.pending: Subscription | None = None
        self.pending_params: Params | None = None

    def swap(self, sub: Subscription) -> None:
        """Switch to another rendition at its next keyframe; until then the current one plays."""
        if self.pending is not None:
            self.pending.close()
        self.pending = sub
        self.pending_params = None

    def _switch(self) -> Unit | None:
        """The pending rendition's first keyframe, if it came: the switch happens there."""
        assert self.pending is not None
        while (item := self.pending.cursor.take()) is not None:
            if isinstance(item, Params):
                self.pending_params = item
            elif item.keyframe and self.pending_params is not None:
                self.sub.close()
                self.sub, self.params = self.pending, self.pending_params
                self.pending = None
                return item
        return None

    async def recv(self) -> av.Packet:  # type: ignore[override]
        while True:
            try:
                item = await self.sub.next()
            except StreamEnded:
                self.stop()
                raise MediaStreamError from None
            if self.pending is not None and (switched := self._switch()) is not None:
                item = switched
            if isinstance(item, Params):
                self.params = item
                continue
            if self.params is None or not (self.started or item.keyframe):
                continue  # a decoder can only start at a keyframe
            self.started = True
            return self._packet(item, self.params)

    def _packet(self, item: Unit, params: Params) -> av.Packet:
        data = item.data
        if item.keyframe and not has_parameter_sets(data):
            data = params.extradata + data
        packet = av.Packet(data)
        packet.pts = item.pts
        packet.dts = item.dts
        packet.time_base = fractions.Fraction(params.time_base_num, params.time_base_den)
        rtp_ticks = item.pts * VIDEO_CLOCK * params.time_base_num // params.time_base_den
        self.on_unit(item, rtp_ticks)
        return packet

    def stop(self) -> None:
        self.sub.close()
        if self.pending is not None:
            self.pending.close()
        super().stop()


@dataclass
class Viewer:
    """A viewer's peer connection, its subscription and what the admin API reports."""

    viewer_id: str
    stream_id: str
    rendition: str
    pc: RTCPeerConnection
    track: PacketTrack | None = None
    sender: RTCRtpSender | None = None
    channel: RTCDataChannel | None = None
    connected_at: float = field(default_factory=time.time)
    state: str = "connecting"
    delays_us: deque[int] = field(default_factory=lambda: deque(maxlen=1000))
    rtp_origin: int | None = None
    good_checks: int = 0
    adaptive: bool = False
    # The latest (rtt ms, jitter ms, lost, fraction lost, packets sent, bytes sent).
    rtcp: tuple[float, float, int, float, int, int] = (0.0, 0.0, 0, 0.0, 0, 0)
    last_pts_ticks: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_unit(self, unit: Unit, pts_ticks: int) -> None:
        """Called as a unit leaves for this viewer: delay figures and the capture-time message."""
        now_ns = time.time_ns()
        if unit.arrived_ns:
            self.delays_us.append((now_ns - unit.arrived_ns) // 1000)
        self._learn_rtp_origin()
        self.last_pts_ticks = pts_ticks
        if self.channel is None or self.channel.readyState != "open":
            return
        message = {
            "pts_90k": pts_ticks,
            "capture_time_us": unit.capture_time_us,
            "relay_sent_us": now_ns // 1000,
            "sequence": unit.sequence,
            "keyframe": unit.keyframe,
        }
        if self.rtp_origin is not None:
            message["rtp_timestamp"] = (self.rtp_origin + pts_ticks) & 0xFFFFFFFF
        self.channel.send(json.dumps(message))

    def _learn_rtp_origin(self) -> None:
        # aiortc adds a random origin to every RTP timestamp and keeps it private; once one
        # frame went out, the last RTP timestamp minus that frame's pts gives it.
        if self.rtp_origin is not None or self.sender is None or self.last_pts_ticks is None:
            return
        sent = getattr(self.sender, "_RTCRtpSender__rtp_timestamp", None)
        if isinstance(sent, int):
            self.rtp_origin = (sent - self.last_pts_ticks) & 0xFFFFFFFF

    async def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if self.track is not None:
            self.track.stop()
        await self.pc.close()
        self.state = "disconnected"


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


async def answer_viewer(
    offer_sdp: str,
    sub: Subscription,
    stream_id: str,
    rendition: str,
    configuration: RTCConfiguration,
) -> tuple[Viewer, str]:
    """Answer a WHEP offer: a sendonly video track fed by ``sub``; returns the answer SDP."""
    pc = RTCPeerConnection(configuration=configuration)
    viewer = Viewer(uuid.uuid4().hex, stream_id, rendition, pc)

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

    try:
        track = PacketTrack(sub, viewer.on_unit)
        # When the stream ends upstream, the viewer's session ends too (its player retries).
        track.on("ended", lambda: asyncio.ensure_future(viewer.close()))
        viewer.track = track
        # The transceiver exists before the offer is applied, so the offer's video section
        # binds to it and only H.264 (the codec of the packets) can be negotiated.
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(h264_codecs())
        viewer.sender = transceiver.sender
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        if transceiver.mid is None:
            raise ValueError("the offer has no video section")
        await pc.setLocalDescription(await pc.createAnswer())
    except BaseException:
        sub.close()
        await pc.close()
        raise
    return viewer, pc.localDescription.sdp
