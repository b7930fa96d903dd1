"""One hub subscription sent to every viewer of a (stream_id, rendition) in one pass.

Each access unit is packetised once (aiortc's H.264 ``pack()``; an Opus packet is its own
RTP payload: no decoder, no encoder) and its packets go to every viewer in a single
synchronous loop, so a keyframe reaches the
last viewer after the packets themselves, not after a hundred task switches. The loop
starts one viewer further on each frame, so no viewer is always served last. Viewers
start, and switch renditions, at a keyframe; a viewer whose socket backs up (or whose
connection is not up) waits for the next keyframe instead of queueing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from collections.abc import Callable

import av
from aiortc.codecs.h264 import H264Encoder

from casino.ingest.v1 import ingest_pb2
from casino_kit.media.gop import Params, Unit
from casino_kit.media.hub import StreamEnded, Subscription
from edge_relay.rtp_out import NotReady
from edge_relay.viewer import Outbound

OPUS_CLOCK = 48000


def has_parameter_sets(annexb: bytes) -> bool:
    """Whether an Annex-B access unit carries an SPS (NAL type 7) in band."""
    i = annexb.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(annexb):
        if annexb[i + 3] & 0x1F == 7:
            return True
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return False


def av_packet(unit: Unit, params: Params) -> av.Packet[av.stream.Stream]:
    """The unit as aiortc's packetiser takes it; keyframes carry SPS and PPS in band."""
    data = unit.data
    if unit.keyframe and not has_parameter_sets(data):
        data = params.extradata + data
    packet = av.Packet(data)
    packet.pts = unit.pts
    packet.dts = unit.dts
    packet.time_base = fractions.Fraction(params.time_base_num, params.time_base_den)
    return packet


class Broadcast:
    """The viewers of one (stream_id, rendition), fed by one hub subscription."""

    def __init__(self, sub: Subscription, on_idle: Callable[[Broadcast], None]) -> None:
        self.sub = sub
        self.rendition = sub.stream.rendition
        self.on_idle = on_idle
        self.viewers: list[Outbound] = []
        self.joining: list[Outbound] = []
        self.packetiser = H264Encoder()
        self.turn = 0
        self.task = asyncio.ensure_future(self._run())

    def join(self, out: Outbound) -> None:
        """``out`` starts here at the next keyframe (leaving its current broadcast then)."""
        if out.pending is not None and out.pending is not self:
            out.pending.drop(out)
        out.pending = self
        if out not in self.joining:
            self.joining.append(out)

    def drop(self, out: Outbound) -> None:
        with contextlib.suppress(ValueError):
            self.viewers.remove(out)
        with contextlib.suppress(ValueError):
            self.joining.remove(out)
        self.release_if_idle()

    def release_if_idle(self) -> None:
        """Nobody receives or waits: the broadcast ends (and with it its subscription)."""
        if not self.viewers and not self.joining:
            self.on_idle(self)

    async def _run(self) -> None:
        params: Params | None = None
        try:
            while True:
                item = await self.sub.next()
                if isinstance(item, Params):
                    params = item
                elif params is not None:
                    self._send(item, params)
        except StreamEnded:
            for out in [*self.viewers, *self.joining]:
                asyncio.ensure_future(out.viewer.close())
        finally:
            self.sub.close()

    def _admit(self) -> None:
        """At a keyframe: every joining viewer that can receive now starts here."""
        for out in list(self.joining):
            if not out.writer.ready():
                continue
            self.joining.remove(out)
            if out.broadcast is not None and out.broadcast is not self:
                out.broadcast.drop(out)
            out.broadcast, out.pending = self, None
            if out.kind == "video":
                out.viewer.rendition = self.rendition
            self.viewers.append(out)

    def _send(self, unit: Unit, params: Params) -> None:
        if unit.keyframe and self.joining:
            self._admit()
        if not self.viewers:
            return
        payloads, timestamp = self._packetise(unit, params)
        count = len(self.viewers)
        start = self.turn % count
        self.turn += 1
        for out in self.viewers[start:] + self.viewers[:start]:
            try:
                rtp_timestamp = out.writer.send(payloads, timestamp)
                if out.kind == "video":
                    out.viewer.sent(unit, rtp_timestamp, timestamp)
            except (NotReady, ConnectionError):
                # Not reading, or not connected: it rejoins at a keyframe, nobody waits.
                self.viewers.remove(out)
                if not out.viewer.closed.is_set():
                    self.joining.append(out)
                    out.pending = self

    def _packetise(self, unit: Unit, params: Params) -> tuple[list[bytes], int]:
        """RTP payloads and the RTP clock timestamp of a unit, for every viewer alike."""
        if params.codec == ingest_pb2.CODEC_OPUS:
            ticks = unit.pts * OPUS_CLOCK * params.time_base_num // params.time_base_den
            return [unit.data], ticks
        return self.packetiser.pack(av_packet(unit, params))

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
