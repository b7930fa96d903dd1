"""Contribution by MPEG-TS (TCP listen or UDP) or RTMP (listen): demuxed with PyAV, never decoded.

A studio encoder pushes MPEG-TS to ``tcp://host:port`` or ``udp://host:port``, or publishes
RTMP to ``rtmp://host:port/app/key``. A thread per listener demuxes packets with PyAV
(``container.demux``: no decoder is opened) and hands each H.264 access unit and Opus packet
to the hub on the event loop. RTMP's H.264 is length-prefixed (AVCC): the
``h264_mp4toannexb`` bitstream filter rewrites it to Annex-B with SPS and PPS before each
keyframe, again without decoding. Neither format carries a wall clock, so an access unit's
capture time is its arrival time at the ingest.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
from av.bitstream import BitStreamFilterContext

from casino.ingest.v1 import ingest_pb2
from casino_kit.errors import DomainError
from casino_kit.logs import get_logger
from casino_kit.media.gop import Params
from casino_kit.media.hub import MediaHub, MediaStream
from ingest_svc.annexb import parameter_sets

log = get_logger(__name__)

VIDEO_RENDITION = "source"
AUDIO_RENDITION = "audio"
PROBE_OPTIONS = {"probesize": "200000", "analyzeduration": "500000", "fflags": "nobuffer"}


@dataclass(frozen=True)
class Listen:
    """One configured listener: ``stream_id=url`` (``table-7=tcp://0.0.0.0:9000``,
    ``table-8=rtmp://0.0.0.0:1935/live/table-8``)."""

    stream_id: str
    url: str

    @classmethod
    def parse(cls, entry: str) -> Listen:
        stream_id, sep, url = entry.partition("=")
        if not sep or not stream_id or not url.startswith(("tcp://", "udp://", "rtmp://")):
            raise ValueError(
                f"bad media listener {entry!r}: use stream_id=tcp://host:port, "
                "stream_id=udp://host:port or stream_id=rtmp://host:port/app/key"
            )
        return cls(stream_id, url)

    @property
    def rtmp(self) -> bool:
        return self.url.startswith("rtmp://")


class MediaListener:
    """Accepts one publisher at a time on ``listen.url`` and feeds the hub."""

    def __init__(self, listen: Listen, hub: MediaHub, loop: asyncio.AbstractEventLoop) -> None:
        self.listen = listen
        self.hub = hub
        self.loop = loop
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"media-{listen.stream_id}")

    def start(self) -> None:
        if not self.thread.is_alive():
            self.thread.start()

    async def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            await asyncio.to_thread(self.thread.join, 5.0)

    def _open(self) -> av.container.InputContainer:
        if self.listen.rtmp:
            # rtmp "timeout" is the listen timeout in seconds: the loop checks the stop flag.
            options = {**PROBE_OPTIONS, "listen": "1", "timeout": "1"}
            return av.open(self.listen.url, format="flv", options=options, timeout=(5.0, 2.0))
        return av.open(self._url(), format="mpegts", options=PROBE_OPTIONS, timeout=(5.0, 2.0))

    def _url(self) -> str:
        if self.listen.url.startswith("tcp://"):
            return f"{self.listen.url}?listen=1&listen_timeout=500"
        return f"{self.listen.url}?timeout=500000&fifo_size=100000&overrun_nonfatal=1"

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                container = self._open()
            except (av.FFmpegError, OSError):
                continue  # no publisher yet (listen timeout): look at the stop flag again
            try:
                self._demux(container)
            except (av.FFmpegError, OSError, DomainError) as error:
                log.info("media publisher gone", stream_id=self.listen.stream_id, error=str(error))
            finally:
                container.close()

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def _demux(self, container: av.container.InputContainer) -> None:
        wanted = [
            s
            for s in container.streams
            if s.type == "video"
            and s.codec_context.name == "h264"
            or s.type == "audio"
            and s.codec_context.name == "opus"
        ]
        if not wanted:
            log.warning("mpegts input has no H.264 or Opus stream", url=self.listen.url)
            return
        publisher = f"{'rtmp' if self.listen.rtmp else 'mpegts'}:{self.listen.url}"
        streams: dict[int, MediaStream] = {}
        annexb = {
            s.index: BitStreamFilterContext("h264_mp4toannexb", s)
            for s in wanted
            if s.type == "video" and (s.codec_context.extradata or b"")[:1] == b"\x01"
        }
        try:
            for demuxed in container.demux(wanted):
                if self.stopping.is_set():
                    break
                if demuxed.size == 0 or demuxed.pts is None:
                    continue
                index = demuxed.stream.index
                bsf = annexb.get(index)
                for packet in bsf.filter(demuxed) if bsf is not None else (demuxed,):
                    self._unit(packet, index, demuxed.stream, streams, publisher)
        finally:
            for stream in streams.values():
                self._call(self.hub.release, stream)

    def _unit(
        self,
        packet: av.Packet[av.stream.Stream],
        index: int,
        source: av.stream.Stream,
        streams: dict[int, MediaStream],
        publisher: str,
    ) -> None:
        if packet.size == 0 or packet.pts is None:
            return
        data = bytes(packet)
        if index not in streams:
            params = self._params(source, data)
            if params is None:
                return  # wait for a keyframe carrying SPS and PPS
            claim = self._claim(params, publisher)
            streams[index] = asyncio.run_coroutine_threadsafe(claim, self.loop).result(5)
        dts = packet.dts if packet.dts is not None else packet.pts
        self._call(
            streams[index].push,
            data,
            bool(packet.is_keyframe),
            int(packet.pts),
            int(dts),
            time.time_ns() // 1000,
        )

    async def _claim(self, params: Params, publisher: str) -> MediaStream:
        return self.hub.claim(params, publisher)

    def _params(self, stream: av.stream.Stream, data: bytes) -> Params | None:
        tb = stream.time_base
        num, den = (tb.numerator, tb.denominator) if tb is not None else (1, 90000)
        ctx = stream.codec_context
        if stream.type == "audio":
            return Params(
                self.listen.stream_id,
                AUDIO_RENDITION,
                ingest_pb2.CODEC_OPUS,
                extradata=bytes(ctx.extradata or b""),
                time_base_num=num,
                time_base_den=den,
                sample_rate=int(getattr(ctx, "sample_rate", 0) or 48000),
                channels=int(getattr(ctx, "channels", 0) or 2),
            )
        extradata = parameter_sets(data)
        if not extradata:
            return None
        return Params(
            self.listen.stream_id,
            VIDEO_RENDITION,
            ingest_pb2.CODEC_H264,
            width=int(getattr(ctx, "width", 0)),
            height=int(getattr(ctx, "height", 0)),
            extradata=extradata,
            time_base_num=num,
            time_base_den=den,
        )
