"""RTP out of one viewer's peer connection, for payloads packetised once for every viewer.

aiortc's own sender runs a task per viewer that packs each access unit again for that
viewer and wakes once per viewer per frame; at a hundred viewers a keyframe then leaves
the relay one viewer after another, each behind the others' task switches. A broadcast
instead packs a unit once and calls ``send`` for every viewer in one pass: this module
adds the viewer's RTP header (its SSRC, sequence numbers, timestamp origin and header
extensions), SRTP-protects the packet with the viewer's DTLS keys and hands it to the
ICE pair's socket. aiortc keeps everything else: ICE, DTLS, RTCP (sender reports from the
counters kept here, receiver reports, NACK answered from the history kept here).

aiortc has no public per-packet API, so this is the one module that reads its internals
(and pylibsrtp's: its per-call overhead was two fifths of each packet's SRTP cost).
"""

from __future__ import annotations

import errno
import functools
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, wrap_rtx
from aiortc.utils import random32
from pylibsrtp import SRTP_MAX_TRAILER_LEN, Session, _srtp_assert
from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

HEADER = struct.Struct("!BBHII")
HISTORY = 128
"""Packets kept per viewer for retransmission on NACK (aiortc keeps as many)."""
MAX_BUFFERED = 256 << 10
"""Bytes the socket may hold back for one viewer before it waits for the next keyframe."""
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
GSO_SIZE = struct.Struct("=H")
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 60000
GSO_UNSUPPORTED = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
gso_enabled = True
"""Cleared, for the process, the first time the kernel refuses a GSO send."""
NTP_EPOCH_NS = 2_208_988_800 * 1_000_000_000
"""Nanoseconds from the NTP epoch (1900) to the Unix epoch (1970)."""


def ntp_now() -> int:
    """The 64-bit NTP time now, as aiortc's ``current_ntp_time`` without its datetimes."""
    seconds, fraction = divmod(time.time_ns() + NTP_EPOCH_NS, 1_000_000_000)
    return seconds << 32 | (fraction << 32) // 1_000_000_000


def runs(sizes: list[int]) -> list[tuple[int, int]]:
    """Cut datagram sizes into GSO runs [start, end): equal sizes, the last one may be smaller."""
    cuts = []
    start, count = 0, len(sizes)
    while start < count:
        size, end, total = sizes[start], start + 1, sizes[start]
        while end < count and end - start < GSO_MAX_SEGMENTS:
            if sizes[end] > size or total + sizes[end] > GSO_MAX_BYTES:
                break
            total += sizes[end]
            end += 1
            if sizes[end - 1] < size:
                break
        cuts.append((start, end))
        start = end
    return cuts


@functools.lru_cache(maxsize=256)
def cached_runs(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """``runs``, once per frame: every viewer of a broadcast sends the same sizes."""
    return runs(list(sizes))


def srtp_protector(session: Session) -> Callable[[bytes], bytes]:
    """``session.protect`` without pylibsrtp's allocation and checks on every call (about
    2 of its 5 µs per packet and viewer): libsrtp protects in place in the session's own
    buffer, as in pylibsrtp. Not thread-safe, like the session itself."""
    srtp, cdata, buffer = session._srtp[0], session._cdata, session._buffer
    room = len(buffer) - SRTP_MAX_TRAILER_LEN
    length = ffi.new("int *")

    def protect(packet: bytes) -> bytes:
        size = len(packet)
        if size > room:
            return session.protect(packet)  # raises, as too long
        buffer[0:size] = packet
        length[0] = size
        _srtp_assert(lib.srtp_protect(srtp, cdata, length))  # type: ignore[no-untyped-call]
        protected: bytes = buffer[0 : length[0]]
        return protected

    return protect


class NotReady(Exception):
    """The viewer's DTLS or ICE is not connected (yet, or any more)."""


class RtpWriter:
    """One viewer's RTP stream: packets out through its SRTP session and ICE pair."""

    def __init__(self, transceiver: RTCRtpTransceiver) -> None:
        self.sender = transceiver.sender
        self.transceiver = transceiver
        self.ssrc: int = self.sender._ssrc
        self.sequence = random_sequence_number()
        self.origin = random32()
        self.rtx_sequence = random_sequence_number()
        self.payload_type = 0
        self.rtx_payload_type: int | None = None
        self.extensions = HeaderExtensionsMap()
        self.extension_head = b""
        self.extension_tail = b""
        self.abs_send_time = False
        self.history: list[tuple[bytes, bytes] | None] = [None] * HISTORY
        self.packets = 0
        self.octets = 0
        self._route: tuple[Callable[[bytes], bytes], Any, tuple[str, int]] | None = None
        self.sender._retransmit = self._retransmit  # type: ignore[method-assign]

    def bind(self) -> None:
        """Take the negotiated payload types and header extension ids (after the answer)."""
        codecs = self.transceiver._codecs
        if codecs[0].payloadType is None:
            raise RuntimeError("bind() before the answer: no payload type negotiated")
        self.payload_type = codecs[0].payloadType
        self.rtx_payload_type = next(
            (
                c.payloadType
                for c in codecs
                if is_rtx(c) and c.parameters.get("apt") == self.payload_type
            ),
            None,
        )
        self.extensions.configure(
            RTCRtpParameters(headerExtensions=self.transceiver._headerExtensions)
        )
        self._extension_template()

    def _extension_template(self) -> None:
        """The header extension block (RTP profile, length, values) cut around the 3 bytes
        of abs-send-time, once, so a frame only fills in the time and not the whole block."""
        low = self._extension_block(0)
        high = self._extension_block(0xFFFFFF)
        hole = next((i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b), None)
        if hole is None:
            self.extension_head, self.abs_send_time = low, False
        else:
            self.extension_head, self.extension_tail = low[:hole], low[hole + 3 :]
            self.abs_send_time = True

    def _extension_block(self, abs_send_time: int) -> bytes:
        profile, values = self.extensions.set(
            HeaderExtensions(mid=self.transceiver.mid, abs_send_time=abs_send_time)
        )
        return struct.pack("!HH", profile, len(values) // 4) + values if values else b""

    def ready(self) -> bool:
        """Whether packets can go out now: DTLS connected and an ICE pair nominated."""
        try:
            self._connected()
        except NotReady:
            return False
        return True

    def _connected(self) -> tuple[Callable[[bytes], bytes], Any, tuple[str, int]]:
        dtls = self.sender.transport
        if dtls._state != State.CONNECTED:
            self._route = None
            raise NotReady
        if self._route is None:
            pair = dtls.transport._connection._nominated.get(1)
            if pair is None or pair.protocol.transport is None:
                raise NotReady
            protect = srtp_protector(dtls._tx_srtp)
            self._route = (protect, pair.protocol.transport, pair.remote_addr)
        return self._route

    def send(self, payloads: list[bytes], timestamp: int) -> int:
        """Send one frame's payloads (the last one marked); returns its RTP timestamp.

        Raises ``NotReady`` when the socket already holds back too much for this viewer:
        it is not reading, and waits for the next keyframe instead of queueing.
        """
        protect, transport, addr = self._connected()
        size = getattr(transport, "get_write_buffer_size", None)  # a TURN transport has none
        buffered = size() if size is not None else 0
        if buffered > MAX_BUFFERED:
            raise NotReady
        ntp = ntp_now()
        rtp_timestamp = (self.origin + timestamp) & 0xFFFFFFFF
        extension = self.extension_head
        if self.abs_send_time:
            extension += ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") + self.extension_tail
        first = 0x90 if extension else 0x80
        pack, history, ssrc = HEADER.pack, self.history, self.ssrc
        sequence, last = self.sequence, len(payloads) - 1
        datagrams = []
        for i, payload in enumerate(payloads):
            second = self.payload_type | (0x80 if i == last else 0)
            header = pack(first, second, sequence, rtp_timestamp, ssrc) + extension
            history[sequence % HISTORY] = (header, payload)
            datagrams.append(protect(header + payload))
            sequence = (sequence + 1) & 0xFFFF
        self.sequence = sequence
        self.packets += len(payloads)
        self.octets += sum(map(len, payloads))
        self._write(datagrams, transport, addr, buffered)
        # What aiortc's RTCP loop puts in sender reports, as its own send loop would keep it.
        self.sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        self.sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
        self.sender._RTCRtpSender__packet_count = self.packets  # type: ignore[attr-defined]
        self.sender._RTCRtpSender__octet_count = self.octets  # type: ignore[attr-defined]
        return rtp_timestamp

    def _write(
        self, datagrams: list[bytes], transport: Any, addr: tuple[str, int], buffered: int
    ) -> None:
        """One GSO send per run of equal-size datagrams, else one send per datagram."""
        global gso_enabled
        sock = getattr(transport, "_sock", None)
        if not gso_enabled or sock is None or buffered:
            for datagram in datagrams:
                transport.sendto(datagram, addr)
            return
        for start, end in cached_runs(tuple(map(len, datagrams))):
            try:
                if end - start == 1:
                    sock.sendto(datagrams[start], addr)
                else:
                    control = [(socket.SOL_UDP, UDP_SEGMENT, GSO_SIZE.pack(len(datagrams[start])))]
                    sock.sendmsg(datagrams[start:end], control, 0, addr)
            except BlockingIOError:
                pass  # the socket is full: the transport queues the rest, in order
            except OSError as error:
                if end - start == 1 or error.errno not in GSO_UNSUPPORTED:
                    continue  # lost, as a UDP datagram may be (an ICMP error, say)
                gso_enabled = False
            else:
                continue
            for datagram in datagrams[start:]:
                transport.sendto(datagram, addr)
            return

    async def _retransmit(self, sequence_number: int) -> None:
        """Answer a NACK from the history, as RTX when negotiated (in place of aiortc's)."""
        kept = self.history[sequence_number % HISTORY]
        if kept is None:
            return
        packet = RtpPacket.parse(kept[0] + kept[1], self.extensions)
        if packet.sequence_number != sequence_number:
            return
        if self.rtx_payload_type is not None:
            packet = wrap_rtx(
                packet,
                payload_type=self.rtx_payload_type,
                sequence_number=self.rtx_sequence,
                ssrc=self.sender._rtx_ssrc,
            )
            self.rtx_sequence = (self.rtx_sequence + 1) & 0xFFFF
        await self.sender.transport._send_rtp(packet.serialize(self.extensions))
