"""Pure media buffering: the current group of pictures and bounded per-subscriber queues.

No I/O and no asyncio here, so the rules that keep memory bounded (a subscriber that falls
behind drops to the next keyframe instead of growing a queue) are tested in microseconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Params:
    """Codec parameters of one elementary stream (mirrors ``CodecParameters``)."""

    stream_id: str
    rendition: str
    codec: int
    width: int = 0
    height: int = 0
    extradata: bytes = b""
    time_base_num: int = 1
    time_base_den: int = 90000
    sample_rate: int = 0
    channels: int = 0


@dataclass(frozen=True)
class Unit:
    """One encoded access unit, unchanged from the publisher (mirrors ``AccessUnit``)."""

    sequence: int
    data: bytes
    keyframe: bool
    pts: int
    dts: int
    capture_time_us: int
    discontinuity: bool = False
    arrived_ns: int = 0


class Gop:
    """The access units since the latest keyframe, so a new subscriber starts decoding at once.

    Bounded by ``max_units`` and ``max_bytes``: a GOP longer than that (a studio encoder with a
    far too long keyframe interval) is dropped, and new subscribers wait for the next keyframe.
    """

    def __init__(self, max_units: int = 600, max_bytes: int = 16 << 20) -> None:
        self.max_units = max_units
        self.max_bytes = max_bytes
        self.units: list[Unit] = []
        self.bytes = 0

    def append(self, unit: Unit) -> None:
        if unit.keyframe:
            self.units, self.bytes = [unit], len(unit.data)
            return
        if not self.units:
            return  # no keyframe to start from: nothing worth keeping
        if len(self.units) >= self.max_units or self.bytes + len(unit.data) > self.max_bytes:
            self.clear()
            return
        self.units.append(unit)
        self.bytes += len(unit.data)

    def clear(self) -> None:
        self.units, self.bytes = [], 0


class Cursor:
    """One subscriber's bounded queue of parameters and access units.

    When the queue is full the subscriber is too slow: its queued units are dropped and it
    skips every unit until the next keyframe, which is marked ``discontinuity``. Parameters
    are never dropped (only the latest pending one is kept).
    """

    def __init__(self, limit: int = 120) -> None:
        self.limit = limit
        self.items: deque[Params | Unit] = deque()
        self.skipping = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, item: Params | Unit) -> None:
        if isinstance(item, Params):
            self.items.append(item)
            return
        if self.skipping:
            if not item.keyframe:
                self.dropped += 1
                return
            self.skipping = False
            item = replace(item, discontinuity=True)
        elif len(self.items) >= self.limit:
            self._overflow()
            if not item.keyframe:
                self.dropped += 1
                return
            self.skipping = False
            item = replace(item, discontinuity=True)
        self.items.append(item)

    def _overflow(self) -> None:
        params = [i for i in self.items if isinstance(i, Params)]
        self.dropped += len(self.items) - len(params)
        self.items = deque(params[-1:])
        self.skipping = True

    def take(self) -> Params | Unit | None:
        return self.items.popleft() if self.items else None
