"""Live elementary streams: one publisher each, any number of bounded subscribers.

Publishers (MPEG-TS demux, gRPC Publish) hand in encoded units; every subscriber gets its
own ``Cursor`` (bounded, skips to the next keyframe when slow), so one slow subscriber never
delays another and memory stays bounded. All methods run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from casino_kit.errors import AlreadyExists, NotFound
from casino_kit.media.gop import Cursor, Gop, Params, Unit

PUBLISHER_GRACE_S = 10.0
"""How long a stream whose publisher left waits for a new one before subscribers end."""


class StreamEnded(Exception):
    """The stream's publisher left and none came back within the grace period."""


class Subscription:
    """A subscriber's view of one stream: ``next()`` waits for the next parameters or unit."""

    def __init__(self, stream: MediaStream, limit: int) -> None:
        self.stream = stream
        self.cursor = Cursor(limit)
        self.wakeup = asyncio.Event()
        self.ended = False
        self.downstream_relay = False  # a relay's subscriber: another relay, not a viewer

    def offer(self, item: Params | Unit) -> None:
        self.cursor.offer(item)
        self.wakeup.set()

    def end(self) -> None:
        self.ended = True
        self.wakeup.set()

    async def next(self) -> Params | Unit:
        while True:
            item = self.cursor.take()
            if item is not None:
                return item
            if self.ended:
                raise StreamEnded(self.stream.stream_id)
            self.wakeup.clear()
            await self.wakeup.wait()

    def close(self) -> None:
        self.stream.subscribers.discard(self)


@dataclass(eq=False)
class MediaStream:
    """One (stream_id, rendition): its parameters, current GOP, publisher and subscribers."""

    stream_id: str
    rendition: str
    table_id: str = ""
    params: Params | None = None
    publisher_id: str = ""
    started_at: float = 0.0
    last_frame_at: float = 0.0
    gop: Gop = field(default_factory=Gop)
    subscribers: set[Subscription] = field(default_factory=set)
    next_sequence: int = 1
    frames_received: int = 0
    bytes_received: int = 0
    recent: deque[tuple[float, int]] = field(default_factory=deque)
    ending: asyncio.TimerHandle | None = None

    def set_params(self, params: Params) -> None:
        if params != self.params:
            self.gop.clear()
        self.params = params
        for sub in self.subscribers:
            sub.offer(params)

    def push(
        self,
        data: bytes,
        keyframe: bool,
        pts: int,
        dts: int,
        capture_time_us: int,
        sequence: int | None = None,
    ) -> Unit:
        """Append one unit; ``sequence`` keeps an upstream's numbering (a relay's), else counts."""
        sequence = self.next_sequence if sequence is None else sequence
        unit = Unit(sequence, data, keyframe, pts, dts, capture_time_us, False, time.time_ns())
        self.next_sequence = sequence + 1
        now = time.time()
        self.last_frame_at = now
        self.frames_received += 1
        self.bytes_received += len(data)
        self.recent.append((now, len(data)))
        while self.recent and self.recent[0][0] < now - 10.0:
            self.recent.popleft()
        self.gop.append(unit)
        for sub in self.subscribers:
            sub.offer(unit)
        return unit

    def bitrate_bps(self) -> int:
        if not self.recent:
            return 0
        span = max(1.0, time.time() - self.recent[0][0])
        return int(sum(size for _, size in self.recent) * 8 / min(10.0, span))


class MediaHub:
    """Every live stream of this process, by (stream_id, rendition)."""

    def __init__(self, subscriber_queue: int = 120, grace_s: float = PUBLISHER_GRACE_S) -> None:
        self.streams: dict[tuple[str, str], MediaStream] = {}
        self.subscriber_queue = subscriber_queue
        self.grace_s = grace_s
        # Called with each stream a publisher claims (the ladder starts its encoders so).
        self.on_claim: list[Callable[[MediaStream], None]] = []

    def claim(self, params: Params, publisher_id: str, table_id: str = "") -> MediaStream:
        """Make ``publisher_id`` the stream's publisher; a second live publisher is refused."""
        key = (params.stream_id, params.rendition)
        stream = self.streams.get(key)
        if stream is not None and stream.publisher_id:
            raise AlreadyExists(
                "STREAM_ALREADY_PUBLISHED",
                f"stream {key[0]}/{key[1]} already has a publisher",
                metadata={"stream_id": key[0], "rendition": key[1]},
            )
        if stream is None:
            stream = MediaStream(params.stream_id, params.rendition)
            self.streams[key] = stream
        if stream.ending is not None:
            stream.ending.cancel()
            stream.ending = None
        stream.table_id = table_id
        stream.publisher_id = publisher_id
        stream.started_at = time.time()
        stream.set_params(params)
        for callback in self.on_claim:
            callback(stream)
        return stream

    def release(self, stream: MediaStream) -> None:
        """The publisher left: subscribers wait ``grace_s`` for a new one, then end."""
        stream.publisher_id = ""
        stream.gop.clear()
        loop = asyncio.get_running_loop()
        stream.ending = loop.call_later(self.grace_s, self._end, stream)

    def _end(self, stream: MediaStream) -> None:
        key = (stream.stream_id, stream.rendition)
        if self.streams.get(key) is stream and not stream.publisher_id:
            del self.streams[key]
            for sub in list(stream.subscribers):
                sub.end()

    def subscribe(self, stream_id: str, rendition: str, with_gop: bool = True) -> Subscription:
        """A subscription that starts with the parameters and the current GOP.

        Without ``with_gop`` it starts at the next keyframe instead: a WebRTC viewer given a
        one-second burst would stay a second behind live.
        """
        stream = self.streams.get((stream_id, rendition))
        if stream is None or stream.params is None:
            raise NotFound(
                "STREAM_NOT_FOUND",
                f"no live media stream {stream_id}/{rendition}",
                metadata={"stream_id": stream_id, "rendition": rendition},
            )
        sub = Subscription(stream, max(self.subscriber_queue, len(stream.gop.units) + 1))
        sub.offer(stream.params)
        for unit in stream.gop.units if with_gop else ():
            sub.offer(unit)
        stream.subscribers.add(sub)
        return sub

    def stop(self) -> None:
        for stream in self.streams.values():
            if stream.ending is not None:
                stream.ending.cancel()
            for sub in list(stream.subscribers):
                sub.end()
        self.streams.clear()
