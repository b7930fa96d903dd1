"""The pure buffering rules: the current GOP, and bounded cursors that skip to a keyframe."""

from __future__ import annotations

from types import ModuleType

import pytest

import casino_kit.media.gop


def unit(gop: ModuleType, sequence: int, keyframe: bool = False, size: int = 10) -> object:
    return gop.Unit(sequence, bytes(size), keyframe, sequence * 3000, sequence * 3000, 0)


@pytest.fixture
def gop() -> ModuleType:
    return casino_kit.media.gop


def test_the_gop_restarts_at_each_keyframe_and_ignores_units_before_one(gop: ModuleType) -> None:
    buffer = gop.Gop()
    buffer.append(unit(gop, 1))
    assert buffer.units == []
    for sequence in range(2, 6):
        buffer.append(unit(gop, sequence, keyframe=sequence == 2))
    assert [u.sequence for u in buffer.units] == [2, 3, 4, 5]
    buffer.append(unit(gop, 6, keyframe=True))
    assert [u.sequence for u in buffer.units] == [6]
    assert buffer.bytes == 10


def test_an_overlong_gop_is_dropped_not_grown(gop: ModuleType) -> None:
    buffer = gop.Gop(max_units=5, max_bytes=1000)
    buffer.append(unit(gop, 1, keyframe=True))
    for sequence in range(2, 20):
        buffer.append(unit(gop, sequence))
        assert len(buffer.units) <= 5
    assert buffer.units == []
    big = gop.Gop(max_units=100, max_bytes=35)
    for sequence in range(1, 5):
        big.append(unit(gop, sequence, keyframe=sequence == 1))
        assert big.bytes <= 35


def test_a_slow_cursor_stays_bounded_and_resumes_at_a_keyframe(gop: ModuleType) -> None:
    params = gop.Params("s", "source", 1)
    cursor = gop.Cursor(limit=4)
    cursor.offer(params)
    for sequence in range(1, 183):  # keyframes every 30; the last at 180
        cursor.offer(unit(gop, sequence, keyframe=sequence % 30 == 0))
        assert len(cursor) <= 5  # the limit plus the pending parameters
    items = []
    while (item := cursor.take()) is not None:
        items.append(item)
    units = [i for i in items if isinstance(i, gop.Unit)]
    assert isinstance(items[0], gop.Params), "parameters are never dropped"
    assert units[0].keyframe and units[0].discontinuity
    assert [u.sequence for u in units] == [180, 181, 182]
    assert not any(u.discontinuity for u in units[1:])
    assert cursor.dropped > 150


def test_a_cursor_that_keeps_up_drops_nothing(gop: ModuleType) -> None:
    cursor = gop.Cursor(limit=4)
    for sequence in range(1, 100):
        cursor.offer(unit(gop, sequence, keyframe=sequence == 1))
        taken = cursor.take()
        assert taken is not None and taken.sequence == sequence and not taken.discontinuity
    assert cursor.dropped == 0
