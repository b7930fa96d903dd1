"""RTP out of one viewer's peer connection, for payloads packetised once for every viewer.

aiortc's own sender runs a task per viewer that packs each access unit again for that
viewer and wakes once per viewer per frame; at a hundred viewers a keyframe then leaves
the relay one viewer after another, each behind the others' task switches. A broadcast
instead packs a unit once and calls ``send`` for every viewer in one pass: this module
adds the viewer's RTP header (its SSRC, sequence numbers, timestamp origin and header
extensions), SRTP-protects the packet with the viewer's DTLS keys and hands it to the
ICE pair's socket. aiortc keeps everything else: ICE, DTLS, RTCP (sender reports from the
counters kept here, receiver reports, NACK answered from the history kept here).

aiortc has no public per-packet API, so this is the one module that reads its internals.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.clock import current_ntp_time
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, wrap_rtx
from aiortc.utils import random32

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
        self.history: list[tuple[bytes, bytes] | None] = [None] * HISTORY
        self.packets = 0
        self.octets = 0
        self._route: tuple[Any, Any, tuple[str, int]] | None = None
        self.sender._retransmit = self._retransmit  # type: ignore[method-assign]

    def bind(self) -> None:
        """Take the negotiated payload types and header extension ids (after the answer)."""
        codecs = self.transceiver._codecs
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

    def ready(self) -> bool:
        """Whether packets can go out now: DTLS connected and an ICE pair nominated."""
        try:
            self._connected()
        except NotReady:
            return False
        return True

    def _connected(self) -> tuple[Any, Any, tuple[str, int]]:
        dtls = self.sender.transport
        if dtls.state != "connected":
            self._route = None
            raise NotReady
        if self._route is None:
            pair = dtls.transport._connection._nominated.get(1)
            if pair is None or pair.protocol.transport is None:
                raise NotReady
            self._route = (dtls._tx_srtp, pair.protocol.transport, pair.remote_addr)
        return self._route

    def backlogged(self) -> bool:
        """Whether the socket holds back too much for this viewer: it is not reading."""
        _, transport, _ = self._connected()
        size = getattr(transport, "get_write_buffer_size", None)
        return size is not None and size() > MAX_BUFFERED

    def send(self, payloads: list[bytes], timestamp: int) -> int:
        """Send one frame's payloads (the last one marked); returns its RTP timestamp."""
        srtp, transport, addr = self._connected()
        rtp_timestamp = (self.origin + timestamp) & 0xFFFFFFFF
        profile, values = self.extensions.set(
            HeaderExtensions(
                mid=self.transceiver.mid,
                abs_send_time=(current_ntp_time() >> 14) & 0x00FFFFFF,
            )
        )
        first = 0x90 if values else 0x80
        extension = struct.pack("!HH", profile, len(values) // 4) + values if values else b""
        protect, history = srtp.protect, self.history
        sequence, last, ssrc = self.sequence, len(payloads) - 1, self.ssrc
        datagrams = []
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == last else 0
            header = HEADER.pack(first, marker | self.payload_type, sequence, rtp_timestamp, ssrc)
            header += extension
            history[sequence % HISTORY] = (header, payload)
            datagrams.append(protect(header + payload))
            self.octets += len(payload)
            sequence = (sequence + 1) & 0xFFFF
        self.sequence = sequence
        self.packets += len(payloads)
        self._write(datagrams, transport, addr)
        # What aiortc's RTCP loop puts in sender reports, as its own send loop would keep it.
        self.sender._RTCRtpSender__ntp_timestamp = current_ntp_time()  # type: ignore[attr-defined]
        self.sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
        self.sender._RTCRtpSender__packet_count = self.packets  # type: ignore[attr-defined]
        self.sender._RTCRtpSender__octet_count = self.octets  # type: ignore[attr-defined]
        return rtp_timestamp

    def _write(self, datagrams: list[bytes], transport: Any, addr: tuple[str, int]) -> None:
        """One GSO send per run of equal-size datagrams, else one send per datagram."""
        global gso_enabled
        sock = getattr(transport, "_sock", None)
        if not gso_enabled or sock is None or transport.get_write_buffer_size():
            for datagram in datagrams:
                transport.sendto(datagram, addr)
            return
        for start, end in runs([len(d) for d in datagrams]):
            try:
                if end - start == 1:
                    sock.sendto(datagrams[start], addr)
                else:
                    control = [(socket.SOL_UDP, UDP_SEGMENT, GSO_SIZE.pack(len(datagrams[start])))]
                    sock.sendmsg([b"".join(datagrams[start:end])], control, 0, addr)
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
