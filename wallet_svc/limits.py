"""Responsible-gaming rules: deposit and loss limits with a cooling period, and blocks.

Lowering or adding a limit protects the player, so it applies at once; raising or removing one
could be an impulse, so it waits ``cooling_us`` and the lower limit applies meanwhile. Usage is
counted per calendar day, week (from Monday) and month in the jurisdiction's time zone, in
counters that live on the account row and change in the same transaction as the balance:
the check and the debit are one atomic step.

Pure code: times are integer microseconds since the Unix epoch, passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S


class LimitKind(StrEnum):
    DEPOSIT = "deposit"
    LOSS = "loss"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


PERIODS = (Period.DAY, Period.WEEK, Period.MONTH)
INDEX = {period: index for index, period in enumerate(PERIODS)}
"""Usage counters and windows are lists in ``PERIODS`` order (cheap to build per row)."""


class ChangeStatus(StrEnum):
    EFFECTIVE = "effective"
    PENDING = "pending"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit: ``amount`` None means no limit. A pending raise or removal waits its time."""

    kind: LimitKind
    period: Period
    amount: int | None
    pending: bool = False
    pending_amount: int | None = None
    pending_at_us: int = 0

    def in_force(self, now_us: int) -> Limit:
        """The limit as it stands at ``now_us``: a pending change whose time came is applied."""
        if self.pending and now_us >= self.pending_at_us:
            return Limit(self.kind, self.period, self.pending_amount)
        return self


@dataclass(frozen=True, slots=True)
class Change:
    """What a requested change did: the limit now stored, and when the request applies."""

    limit: Limit
    status: ChangeStatus
    effective_at_us: int


def _stricter(new: int | None, current: int | None) -> bool:
    """Whether ``new`` protects at least as much as ``current`` (None = no limit)."""
    if new is None:
        return current is None
    return current is None or new <= current


def change(
    current: Limit | None,
    kind: LimitKind,
    period: Period,
    requested: int | None,
    now_us: int,
    cooling_us: int,
) -> Change:
    """Apply a request to set ``kind``/``period`` to ``requested`` (None removes it).

    Equal to the limit in force: UNCHANGED (and any pending raise is dropped, since the later
    request replaces it). Lower, or new: EFFECTIVE now. Higher, or a removal: PENDING until
    ``now_us + cooling_us``, the limit in force staying as it is.
    """
    in_force = (current or Limit(kind, period, None)).in_force(now_us)
    if requested == in_force.amount:
        return Change(Limit(kind, period, in_force.amount), ChangeStatus.UNCHANGED, now_us)
    if _stricter(requested, in_force.amount):
        return Change(Limit(kind, period, requested), ChangeStatus.EFFECTIVE, now_us)
    at = now_us + cooling_us
    stored = Limit(kind, period, in_force.amount, True, requested, at)
    return Change(stored, ChangeStatus.PENDING, at)


@dataclass(frozen=True, slots=True)
class Window:
    """The current calendar periods: their starts and ends, in ``PERIODS`` order."""

    starts: tuple[int, int, int]
    ends: tuple[int, int, int]

    def end_of(self, period: Period) -> int:
        return self.ends[INDEX[period]]

    def contains(self, at_us: int) -> bool:
        """Whether ``at_us`` is still in the same day (so in the same week and month)."""
        return self.starts[0] <= at_us < self.ends[0]


def _us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def window(now_us: int, zone: ZoneInfo) -> Window:
    """The day, week (Monday) and month around ``now_us`` in ``zone``."""
    local = datetime.fromtimestamp(now_us / US_PER_S, zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    next_day = day + timedelta(days=1)  # wall-clock arithmetic: midnight, DST or not
    week = day - timedelta(days=day.weekday())
    next_week = week + timedelta(days=7)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)

    def at(moment: datetime) -> int:
        return _us(moment.replace(tzinfo=zone))

    return Window(
        starts=(at(day), at(week), at(month)),
        ends=(at(next_day), at(next_week), at(next_month)),
    )


def _zeros() -> list[int]:
    return [0, 0, 0]


@dataclass(slots=True)
class Usage:
    """Deposits and net loss (stakes - payouts - refunds) per current period of one account,
    each a list in ``PERIODS`` order."""

    starts: list[int] = field(default_factory=_zeros)
    deposits: list[int] = field(default_factory=_zeros)
    loss: list[int] = field(default_factory=_zeros)

    def roll(self, current: Window) -> bool:
        """Restart the counters of periods that ended; return whether anything changed."""
        if tuple(self.starts) == current.starts:
            return False
        for index, start in enumerate(current.starts):
            if self.starts[index] != start:
                self.starts[index] = start
                self.deposits[index] = 0
                self.loss[index] = 0
        return True

    def used(self, kind: LimitKind, period: Period) -> int:
        """What counts against a limit: deposits, or the net loss floored at zero."""
        if kind is LimitKind.DEPOSIT:
            return self.deposits[INDEX[period]]
        return max(0, self.loss[INDEX[period]])

    def add_deposit(self, amount: int) -> None:
        counters = self.deposits
        counters[0] += amount
        counters[1] += amount
        counters[2] += amount

    def add_loss(self, amount: int) -> None:
        """A stake adds to the loss; a payout or refund (negative ``amount``) takes from it."""
        counters = self.loss
        counters[0] += amount
        counters[1] += amount
        counters[2] += amount


def breach(
    usage: Usage, limits: Iterable[Limit], kind: LimitKind, amount: int, now_us: int
) -> Period | None:
    """The first period whose ``kind`` limit ``amount`` more would exceed, if any.

    ``usage`` must be rolled to the current window. A stake counts as lost from the moment it
    is placed; winnings earlier in the period leave room for more stakes.
    """
    for limit in limits:
        if limit.kind is not kind:
            continue
        cap = limit.in_force(now_us).amount
        if cap is None:
            continue
        counted = usage.deposits if kind is LimitKind.DEPOSIT else usage.loss
        if counted[INDEX[limit.period]] + amount > cap:
            return limit.period
    return None


class BlockKind(StrEnum):
    SELF_EXCLUSION = "self_exclusion"
    COOL_OFF = "cool_off"


COOL_OFF_MIN_US = US_PER_DAY
COOL_OFF_MAX_US = 42 * US_PER_DAY
SELF_EXCLUSION_MIN_US = 183 * US_PER_DAY


@dataclass(frozen=True, slots=True)
class Block:
    """A self-exclusion or cool-off; ``ends_us`` None is permanent."""

    kind: BlockKind
    starts_us: int
    ends_us: int | None

    def active(self, now_us: int) -> bool:
        return self.ends_us is None or now_us < self.ends_us

    @property
    def reason(self) -> str:
        return "SELF_EXCLUDED" if self.kind is BlockKind.SELF_EXCLUSION else "COOLING_OFF"


def block_problem(kind: BlockKind, ends_us: int | None, now_us: int) -> str | None:
    """Why a requested block is not allowed, or None: the lengths regulators fix."""
    if kind is BlockKind.COOL_OFF:
        if ends_us is None:
            return "a cool-off needs an end"
        if not COOL_OFF_MIN_US <= ends_us - now_us <= COOL_OFF_MAX_US:
            return "a cool-off lasts from 24 hours to 6 weeks"
    elif ends_us is not None and ends_us - now_us < SELF_EXCLUSION_MIN_US:
        return "a self-exclusion lasts at least 6 months"
    return None


def extend(current: Block | None, kind: BlockKind, ends_us: int | None, now_us: int) -> Block:
    """The block after a request: extended if the request ends later, otherwise unchanged."""
    if current is None or not current.active(now_us):
        return Block(kind, now_us, ends_us)
    if current.ends_us is None:
        return current
    if ends_us is None or ends_us > current.ends_us:
        return Block(kind, current.starts_us, ends_us)
    return current
