"""How a frame's datagrams are cut into UDP GSO sends (pure: no sockets)."""

from __future__ import annotations

from edge_relay.rtp_out import GSO_MAX_SEGMENTS, runs


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
