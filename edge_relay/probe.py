"""An opt-in probe counting codec work in the relay process (``CASINO_CODEC_PROBE=1``).

The relay must never decode or encode. The probe wraps every way aiortc reaches a codec
(``av.CodecContext.create`` as each codec module sees it, and the H.264 encoder's and
decoder's own methods) and counts the calls, so a test can read the counts from ``/stats``
while viewers play. It is off in production: the wrappers are for proof, not for speed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiortc.codecs.g711
import aiortc.codecs.h264
import aiortc.codecs.opus
import av


class CodecCounts:
    """Counts of codec contexts created and frames encoded or decoded, by kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {
                "codec_contexts_created": self.counts["codec_contexts_created"],
                "h264_encoders_used": self.counts["h264_encoders_used"],
                "h264_decoders_created": self.counts["h264_decoders_created"],
                "packets_packed": self.counts["packets_packed"],
            }


class _CountingCodecContext:
    """Stands in for ``av.CodecContext`` where aiortc looks it up: creation is counted."""

    def __init__(self, real: Any, counts: CodecCounts) -> None:
        self._real = real
        self._counts = counts

    def create(self, *args: Any, **kwargs: Any) -> Any:
        self._counts.add("codec_contexts_created")
        return self._real.create(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _counting(method: Callable[..., Any], counts: CodecCounts, what: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counts.add(what)
        return method(*args, **kwargs)

    return wrapper


def install() -> CodecCounts:
    """Wrap the codec entry points of this process; call once, at start-up."""
    counts = CodecCounts()
    proxy = _CountingCodecContext(av.CodecContext, counts)
    av.CodecContext = proxy  # type: ignore[misc,assignment]
    for module in (aiortc.codecs.opus, aiortc.codecs.g711):
        module.CodecContext = proxy  # type: ignore[attr-defined]
    h264 = aiortc.codecs.h264
    h264.H264Encoder.encode = _counting(  # type: ignore[method-assign]
        h264.H264Encoder.encode, counts, "h264_encoders_used"
    )
    h264.H264Encoder.pack = _counting(  # type: ignore[method-assign]
        h264.H264Encoder.pack, counts, "packets_packed"
    )
    h264.H264Decoder.__init__ = _counting(  # type: ignore[method-assign]
        h264.H264Decoder.__init__, counts, "h264_decoders_created"
    )
    return counts
