"""A WHEP viewer for tests and the benchmark: an aiortc peer that offers recvonly video.

``decode=True`` reads decoded frames from the track (proof the stream plays). Otherwise the
receiver's RTP handler is replaced by a counter, so no decoder runs in the client either:
the benchmark's clients then cost little beside the relay they measure.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack


@dataclass
class Viewer:
    """A connected viewer; counters grow as media arrives."""

    pc: RTCPeerConnection
    location: str
    base: str
    link_headers: list[str]
    packets: int = 0
    frames_marked: int = 0
    audio_packets: int = 0
    capture_by_rtp: dict[int, int] = field(default_factory=dict)
    arrival_by_rtp: dict[int, float] = field(default_factory=dict)
    delays_ms: list[float] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    track: MediaStreamTrack | None = None
    track_ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def frames(self, count: int, timeout_s: float = 20.0) -> list[Any]:
        """Decode ``count`` video frames (the track must come from a decoding viewer)."""
        await asyncio.wait_for(self.track_ready.wait(), timeout_s)
        assert self.track is not None
        return [await asyncio.wait_for(self.track.recv(), timeout_s) for _ in range(count)]

    def on_message(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        self.messages.append(message)
        if len(self.messages) > 1000:
            del self.messages[:500]
        if "rtp_timestamp" in message:
            self.match(message["rtp_timestamp"], capture_us=message["capture_time_us"])

    def match(self, rtp: int, capture_us: int = 0, arrival_ms: float = 0.0) -> None:
        """Pair a frame's last packet with its capture time, whichever arrives first."""
        if capture_us:
            self.capture_by_rtp[rtp] = capture_us
        if arrival_ms:
            self.arrival_by_rtp[rtp] = arrival_ms
        if rtp in self.capture_by_rtp and rtp in self.arrival_by_rtp:
            capture = self.capture_by_rtp.pop(rtp)
            self.delays_ms.append(self.arrival_by_rtp.pop(rtp) - capture / 1000)
        for pending in (self.capture_by_rtp, self.arrival_by_rtp):
            if len(pending) > 1000:
                for key in list(pending)[:500]:
                    del pending[key]

    async def leave(self, session: aiohttp.ClientSession) -> int:
        async with session.delete(self.base + self.location) as response:
            status = response.status
        await self.pc.close()
        return status


def _count_packets(viewer: Viewer, receiver: RTCRtpReceiver) -> None:
    async def handle(packet: Any, arrival_time_ms: int) -> None:
        viewer.packets += 1
        if packet.marker:
            viewer.frames_marked += 1
            viewer.match(packet.timestamp, arrival_ms=time.time() * 1000)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


async def watch(
    session: aiohttp.ClientSession,
    base: str,
    path: str,
    *,
    decode: bool = True,
    capture_channel: bool = False,
    token: str = "",
    ice: RTCConfiguration | None = None,
    trickle: bool = False,
    audio: bool = False,
) -> Viewer:
    """POST an offer to ``base + path``; returns once the answer is applied.

    With ``trickle`` the offer goes without candidates, which follow by PATCH (RFC 9725).
    """
    pc = RTCPeerConnection(configuration=ice or RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    listen = pc.addTransceiver("audio", direction="recvonly") if audio else None
    channel = pc.createDataChannel("capture") if capture_channel else None
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    offer = pc.localDescription.sdp
    held = [line for line in offer.splitlines() if line.startswith("a=candidate:")]
    if trickle:
        offer = "".join(
            f"{line}\r\n"
            for line in offer.splitlines()
            if not line.startswith(("a=candidate:", "a=end-of-candidates"))
        )
    async with session.post(base + path, data=offer, headers=headers) as r:
        body = await r.text()
        if r.status != 201:
            await pc.close()
            raise AssertionError(f"WHEP POST answered {r.status}: {body}")
        location = r.headers["Location"]
        links = r.headers.getall("Link", [])
    if trickle:
        ufrag = next(line for line in offer.splitlines() if line.startswith("a=ice-ufrag:"))
        fragment = "\r\n".join([ufrag, "m=video 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0", *held])
        patch_headers = {**headers, "Content-Type": "application/trickle-ice-sdpfrag"}
        async with session.patch(
            base + location, data=fragment + "\r\na=end-of-candidates\r\n", headers=patch_headers
        ) as r:
            if r.status != 204:
                raise AssertionError(f"WHEP PATCH answered {r.status}: {await r.text()}")
    viewer = Viewer(pc, location, base, links)
    if channel is not None:
        channel.on("message", viewer.on_message)
    if not decode:
        _count_packets(viewer, transceiver.receiver)
    if listen is not None:

        async def count_audio(packet: Any, arrival_time_ms: int) -> None:
            viewer.audio_packets += 1

        listen.receiver._handle_rtp_packet = count_audio  # type: ignore[method-assign]

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        viewer.track = track
        viewer.track_ready.set()

    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return viewer
