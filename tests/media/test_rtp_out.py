"""The RTP writer's parts: GSO runs, SRTP protection, the NTP clock, header extensions."""

from __future__ import annotations

import struct

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.clock import current_ntp_time
from aiortc.rtp import HeaderExtensions, RtpPacket
from pylibsrtp import Policy, Session

from edge_relay.rtp_out import GSO_MAX_SEGMENTS, HEADER, ntp_now, runs, srtp_protector
from edge_relay.viewer import answer_viewer


def test_equal_sizes_go_together_and_a_smaller_one_ends_a_run() -> None:
    # STAP-A (SPS, PPS), then FU-A fragments of one NAL (aiortc makes the first ones a byte
    # longer), then a small slice: the kernel requires equal segments but a shorter last.
    sizes = [40, 1301, 1301, 1300, 1300, 1300, 500]
    assert runs(sizes) == [(0, 1), (1, 4), (4, 7)]


def test_runs_cover_every_datagram_once_within_the_kernel_limits() -> None:
    sizes = [1200] * 150 + [800, 1300]
    cut = runs(sizes)
    assert [i for start, end in cut for i in range(start, end)] == list(range(len(sizes)))
    assert all(end - start <= GSO_MAX_SEGMENTS for start, end in cut)
    assert all(sum(sizes[start:end]) <= 65507 for start, end in cut)
    assert runs([]) == []


def test_the_lean_protector_writes_what_pylibsrtp_writes_and_a_peer_can_read_it() -> None:
    key = bytes(range(30))
    plain = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    lean = srtp_protector(Session(policy=plain))
    reference = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    receiver = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    for sequence, size in enumerate([1200, 40, 1300, 1]):
        packet = HEADER.pack(0x80, 96, sequence, 90000, 0x1234) + bytes([sequence]) * size
        protected = lean(packet)
        assert protected == reference.protect(packet)
        assert protected != packet and receiver.unprotect(protected) == packet
    with pytest.raises(ValueError):
        lean(HEADER.pack(0x80, 96, 9, 90000, 0x1234) + bytes(1500))


def test_ntp_now_is_aiortcs_clock() -> None:
    before = current_ntp_time()
    now = ntp_now()
    after = current_ntp_time()
    microsecond = (1 << 32) // 1_000_000 + 1  # aiortc's clock has microseconds only
    assert before - microsecond <= now <= after + microsecond


async def test_a_viewers_header_extensions_are_aiortcs_with_the_send_time_filled_in() -> None:
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTransceiver("video", direction="recvonly")
    await client.setLocalDescription(await client.createOffer())
    viewer, _ = await answer_viewer(
        client.localDescription.sdp, "s", "source", RTCConfiguration(iceServers=[])
    )
    try:
        assert viewer.video is not None
        writer = viewer.video.writer
        assert writer.abs_send_time, "aiortc negotiates abs-send-time for video"
        send_time = 0xABCDEF
        block = writer.extension_head + send_time.to_bytes(3, "big") + writer.extension_tail
        profile, values = writer.extensions.set(
            HeaderExtensions(mid=writer.transceiver.mid, abs_send_time=send_time)
        )
        assert block == struct.pack("!HH", profile, len(values) // 4) + values
        header = HEADER.pack(0x90, 96, 1, 2, 3) + block
        parsed = RtpPacket.parse(header + b"payload", writer.extensions)
        assert parsed.extensions.mid == writer.transceiver.mid
        assert parsed.extensions.abs_send_time == send_time
        assert parsed.payload == b"payload"
    finally:
        await viewer.close()
        await client.close()
