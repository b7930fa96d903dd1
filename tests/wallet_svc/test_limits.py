"""Responsible-gaming rules, pure: lower at once, raise after the cooling period, periods roll."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from wallet_svc.limits import (
    COOL_OFF_MAX_US,
    US_PER_DAY,
    US_PER_S,
    Block,
    BlockKind,
    ChangeStatus,
    Limit,
    LimitKind,
    Period,
    Usage,
    block_problem,
    breach,
    change,
    extend,
    window,
)

HOUR = 3_600 * US_PER_S
COOLING = 24 * HOUR
UTC_ZONE = ZoneInfo("UTC")


def us(year: int, month: int, day: int, hour: int = 0, zone: ZoneInfo = UTC_ZONE) -> int:
    moment = datetime(year, month, day, hour, tzinfo=zone).astimezone(UTC)
    return int(moment.timestamp()) * US_PER_S


NOW = us(2026, 11, 18, 15)  # a Wednesday


def test_a_new_limit_applies_at_once() -> None:
    done = change(None, LimitKind.DEPOSIT, Period.DAY, 10_000, NOW, COOLING)
    assert done.status is ChangeStatus.EFFECTIVE and done.effective_at_us == NOW
    assert done.limit.in_force(NOW).amount == 10_000


def test_lowering_applies_at_once_raising_waits_the_cooling_period() -> None:
    current = Limit(LimitKind.LOSS, Period.WEEK, 5_000)
    lower = change(current, LimitKind.LOSS, Period.WEEK, 1_000, NOW, COOLING)
    assert lower.status is ChangeStatus.EFFECTIVE and lower.limit.amount == 1_000
    higher = change(current, LimitKind.LOSS, Period.WEEK, 9_000, NOW, COOLING)
    assert higher.status is ChangeStatus.PENDING
    assert higher.effective_at_us == NOW + COOLING
    assert higher.limit.in_force(NOW + COOLING - 1).amount == 5_000
    assert higher.limit.in_force(NOW + COOLING).amount == 9_000


def test_removing_a_limit_is_a_raise() -> None:
    current = Limit(LimitKind.DEPOSIT, Period.MONTH, 5_000)
    removed = change(current, LimitKind.DEPOSIT, Period.MONTH, None, NOW, COOLING)
    assert removed.status is ChangeStatus.PENDING
    assert removed.limit.in_force(NOW).amount == 5_000
    assert removed.limit.in_force(NOW + COOLING).amount is None


def test_a_later_request_replaces_a_pending_raise() -> None:
    current = Limit(LimitKind.LOSS, Period.DAY, 100)
    pending = change(current, LimitKind.LOSS, Period.DAY, 900, NOW, COOLING).limit
    same = change(pending, LimitKind.LOSS, Period.DAY, 100, NOW + HOUR, COOLING)
    assert same.status is ChangeStatus.UNCHANGED and not same.limit.pending
    lower = change(pending, LimitKind.LOSS, Period.DAY, 50, NOW + HOUR, COOLING)
    assert lower.status is ChangeStatus.EFFECTIVE and not lower.limit.pending
    assert lower.limit.in_force(NOW + 2 * COOLING).amount == 50


def test_a_raise_that_came_due_is_the_limit_a_new_request_compares_with() -> None:
    current = Limit(LimitKind.LOSS, Period.DAY, 100)
    pending = change(current, LimitKind.LOSS, Period.DAY, 900, NOW, COOLING).limit
    later = NOW + COOLING + HOUR
    lower = change(pending, LimitKind.LOSS, Period.DAY, 500, later, COOLING)
    assert lower.status is ChangeStatus.EFFECTIVE and lower.limit.amount == 500


def test_windows_are_calendar_periods_in_the_zone() -> None:
    current = window(NOW, UTC_ZONE)
    assert current.starts == (us(2026, 11, 18), us(2026, 11, 16), us(2026, 11, 1))
    assert current.ends == (us(2026, 11, 19), us(2026, 11, 23), us(2026, 12, 1))
    malta = ZoneInfo("Europe/Malta")
    late = us(2026, 11, 18, 23, malta)  # 22:00 UTC, still the 18th in Malta
    assert window(late, malta).starts[0] == us(2026, 11, 18, 0, malta)


def test_a_day_across_a_dst_change_ends_at_local_midnight() -> None:
    malta = ZoneInfo("Europe/Malta")
    short_day = us(2026, 3, 29, 12, malta)  # clocks go forward at 02:00
    current = window(short_day, malta)
    assert current.ends[0] - current.starts[0] == 23 * HOUR


def test_usage_rolls_per_period_and_counts_net_loss() -> None:
    usage = Usage()
    usage.roll(window(NOW, UTC_ZONE))
    usage.add_deposit(1_000)
    usage.add_loss(300)
    usage.add_loss(-500)  # a payout bigger than the stakes so far
    assert usage.used(LimitKind.DEPOSIT, Period.DAY) == 1_000
    assert usage.used(LimitKind.LOSS, Period.DAY) == 0  # floored
    next_day = window(NOW + US_PER_DAY, UTC_ZONE)
    assert usage.roll(next_day)
    assert usage.used(LimitKind.DEPOSIT, Period.DAY) == 0
    assert usage.used(LimitKind.DEPOSIT, Period.WEEK) == 1_000  # same week
    assert not usage.roll(next_day)


def test_breach_names_the_first_period_exceeded() -> None:
    usage = Usage()
    usage.roll(window(NOW, UTC_ZONE))
    usage.add_loss(800)
    limits = [
        Limit(LimitKind.LOSS, Period.MONTH, 10_000),
        Limit(LimitKind.LOSS, Period.DAY, 1_000),
        Limit(LimitKind.DEPOSIT, Period.DAY, 1),
    ]
    assert breach(usage, limits, LimitKind.LOSS, 200, NOW) is None
    assert breach(usage, limits, LimitKind.LOSS, 201, NOW) is Period.DAY
    assert breach(usage, limits, LimitKind.DEPOSIT, 2, NOW) is Period.DAY
    usage.add_loss(-900)  # winnings leave room for more stakes
    assert breach(usage, limits, LimitKind.LOSS, 1_100, NOW) is None


def test_block_lengths_follow_the_rules() -> None:
    assert block_problem(BlockKind.COOL_OFF, NOW + HOUR, NOW) is not None
    assert block_problem(BlockKind.COOL_OFF, NOW + US_PER_DAY, NOW) is None
    assert block_problem(BlockKind.COOL_OFF, NOW + COOL_OFF_MAX_US + 1, NOW) is not None
    assert block_problem(BlockKind.COOL_OFF, None, NOW) is not None
    assert block_problem(BlockKind.SELF_EXCLUSION, None, NOW) is None
    assert block_problem(BlockKind.SELF_EXCLUSION, NOW + 30 * US_PER_DAY, NOW) is not None


def test_a_block_is_extended_never_shortened() -> None:
    first = extend(None, BlockKind.COOL_OFF, NOW + 7 * US_PER_DAY, NOW)
    assert first == Block(BlockKind.COOL_OFF, NOW, NOW + 7 * US_PER_DAY)
    shorter = extend(first, BlockKind.COOL_OFF, NOW + 2 * US_PER_DAY, NOW + HOUR)
    assert shorter == first
    longer = extend(first, BlockKind.SELF_EXCLUSION, None, NOW + HOUR)
    assert longer == Block(BlockKind.SELF_EXCLUSION, NOW, None)
    assert extend(longer, BlockKind.COOL_OFF, NOW + 9 * US_PER_DAY, NOW) == longer
    expired = extend(first, BlockKind.COOL_OFF, NOW + 20 * US_PER_DAY, NOW + 8 * US_PER_DAY)
    assert expired.starts_us == NOW + 8 * US_PER_DAY
    assert first.active(NOW) and not first.active(NOW + 7 * US_PER_DAY)
