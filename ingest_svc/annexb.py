"""Annex-B H.264 byte streams: NAL units and parameter sets, without decoding."""

from __future__ import annotations


def parameter_sets(annexb: bytes) -> bytes:
    """The SPS and PPS NAL units of an Annex-B access unit, start codes included."""
    out = bytearray()
    for nal in split_nal_units(annexb):
        if nal and nal[0] & 0x1F in (7, 8):
            out += b"\x00\x00\x00\x01" + nal
    return bytes(out)


def split_nal_units(annexb: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream, without their start codes."""
    units: list[bytes] = []
    i, n, start = 0, len(annexb), -1
    while i + 2 < n:
        if annexb[i] == 0 and annexb[i + 1] == 0 and annexb[i + 2] == 1:
            if start >= 0:
                end = i - 1 if i > 0 and annexb[i - 1] == 0 else i
                units.append(annexb[start:end])
            i += 3
            start = i
        else:
            i += 1
    if start >= 0:
        units.append(annexb[start:])
    return units
