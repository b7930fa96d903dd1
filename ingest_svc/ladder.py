"""The rendition ladder: the one place on the media path that decodes and encodes.

For each source H.264 stream, one thread decodes it once with PyAV, scales each frame to
every rung (``720p``, ``360p``: the number is the height) and encodes it with libx264 the
way WebRTC needs it: constrained baseline, no B-frames, zero latency, a keyframe every
second, Annex-B with SPS and PPS repeated in band. Every rendition keeps the source's pts
and capture times, so a relay can switch a viewer between renditions at a keyframe without
a jump. Rungs taller than the source are skipped. The source units reach the thread through
a bounded queue: if encoding falls behind, the ladder skips to the next keyframe and the
pass-through rendition is never delayed.
"""

from __future__ import annotations

import asyncio
import fractions
import queue
import threading
from dataclasses import dataclass, replace

import av

from casino.ingest.v1 import ingest_pb2
from casino_kit.logs import get_logger
from casino_kit.media.gop import Params, Unit
from casino_kit.media.hub import MediaHub, MediaStream, StreamEnded
from ingest_svc.annexb import parameter_sets

log = get_logger(__name__)

QUEUE_UNITS = 30
SOURCE = "source"


def rung_height(name: str) -> int:
    """``360p`` -> 360; a bad name fails at start-up."""
    if not name.endswith("p") or not name[:-1].isdigit() or int(name[:-1]) < 16:
        raise ValueError(f"bad ladder rung {name!r}: use names such as 720p or 360p")
    return int(name[:-1])


@dataclass
class Rung:
    name: str
    width: int
    height: int
    bitrate: int
    encoder: av.video.codeccontext.VideoCodecContext | None = None
    stream: MediaStream | None = None


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


class Ladder:
    """Encodes the renditions of one source stream in its own thread."""

    def __init__(
        self, hub: MediaHub, source: Params, rungs: tuple[str, ...], fps: int = 30
    ) -> None:
        self.hub = hub
        self.source = source
        self.fps = fps
        self.loop = asyncio.get_running_loop()
        self.units: queue.Queue[Unit | None] = queue.Queue(QUEUE_UNITS)
        self.skipping = True  # a decoder starts at a keyframe
        self.rungs = [
            Rung(
                name,
                _even(source.width * rung_height(name) / source.height),
                rung_height(name),
                bitrate=int(2_500_000 * rung_height(name) / 720),
            )
            for name in rungs
            if rung_height(name) <= source.height
        ]
        self.thread = threading.Thread(target=self._run, name=f"ladder-{source.stream_id}")

    def start(self) -> None:
        if self.rungs and not self.thread.is_alive():
            self.thread.start()

    def offer(self, unit: Unit) -> None:
        """Called on the event loop for every source unit; never blocks."""
        if self.skipping and not unit.keyframe:
            return
        try:
            self.units.put_nowait(unit)
            self.skipping = False
        except queue.Full:
            self.skipping = True

    def stop(self) -> None:
        try:
            self.units.put_nowait(None)
        except queue.Full:
            self.units.get_nowait()
            self.units.put_nowait(None)

    def _encoder(self, rung: Rung) -> av.video.codeccontext.VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = rung.width, rung.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = fractions.Fraction(self.source.time_base_num, self.source.time_base_den)
        encoder.framerate = fractions.Fraction(self.fps, 1)
        encoder.bit_rate = rung.bitrate
        encoder.profile = "Baseline"
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "bf": "0",
            "g": str(self.fps),
            "keyint_min": str(self.fps),
            "repeat-headers": "1",
        }
        return encoder

    def _run(self) -> None:
        decoder = av.CodecContext.create("h264", "r")
        captures: dict[int, int] = {}
        while (unit := self.units.get()) is not None:
            captures[unit.pts] = unit.capture_time_us
            if len(captures) > 120:
                del captures[next(iter(captures))]
            packet = av.Packet(unit.data)
            packet.pts = packet.dts = unit.pts
            try:
                frames = decoder.decode(packet)
            except av.FFmpegError as error:
                log.warning("ladder decode failed", error=str(error))
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                capture = captures.get(frame.pts, unit.capture_time_us)
                for rung in self.rungs:
                    self._encode(rung, frame, capture)
        for rung in self.rungs:
            if rung.stream is not None:
                self.loop.call_soon_threadsafe(self.hub.release, rung.stream)

    def _encode(self, rung: Rung, frame: av.VideoFrame, capture_us: int) -> None:
        if rung.encoder is None:
            rung.encoder = self._encoder(rung)
        scaled = frame.reformat(width=rung.width, height=rung.height, format="yuv420p")
        scaled.pts = frame.pts
        scaled.pict_type = av.video.frame.PictureType.NONE
        for packet in rung.encoder.encode(scaled):
            if packet.pts is None:
                continue
            data = bytes(packet)
            if rung.stream is None:
                params = replace(
                    self.source,
                    rendition=rung.name,
                    codec=ingest_pb2.CODEC_H264,
                    width=rung.width,
                    height=rung.height,
                    extradata=parameter_sets(data),
                )
                claim = self._claim(params)
                rung.stream = asyncio.run_coroutine_threadsafe(claim, self.loop).result(5)
            self.loop.call_soon_threadsafe(
                rung.stream.push,
                data,
                bool(packet.is_keyframe),
                int(packet.pts),
                int(packet.dts if packet.dts is not None else packet.pts),
                capture_us,
            )

    async def _claim(self, params: Params) -> MediaStream:
        return self.hub.claim(params, f"ladder:{self.source.stream_id}/{self.source.rendition}")


class LadderService:
    """Starts a ladder for every ``source`` H.264 stream (RTMP, MPEG-TS, or a studio SDK
    publishing rendition "source"), fed by a hub subscription like any subscriber."""

    def __init__(self, hub: MediaHub, rungs: tuple[str, ...]) -> None:
        for name in rungs:
            rung_height(name)
        self.hub = hub
        self.rungs = rungs
        self.tasks: dict[str, asyncio.Task[None]] = {}
        if rungs:
            hub.on_claim.append(self._claimed)

    def _claimed(self, stream: MediaStream) -> None:
        params = stream.params
        if params is None or params.codec != ingest_pb2.CODEC_H264:
            return
        if stream.rendition != SOURCE:
            return  # a studio publishing its own renditions over gRPC has its own ladder
        if stream.publisher_id.startswith("ladder:") or stream.stream_id in self.tasks:
            return
        task = asyncio.ensure_future(self._feed(stream))
        self.tasks[stream.stream_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(stream.stream_id, None))

    async def _feed(self, stream: MediaStream) -> None:
        sub = self.hub.subscribe(stream.stream_id, stream.rendition, with_gop=False)
        ladder: Ladder | None = None
        try:
            while True:
                item = await sub.next()
                if isinstance(item, Params):
                    if ladder is None:
                        ladder = Ladder(self.hub, item, self.rungs)
                        ladder.start()
                elif ladder is not None:
                    ladder.offer(item)
        except StreamEnded:
            pass
        finally:
            sub.close()
            if ladder is not None:
                ladder.stop()

    async def stop(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
