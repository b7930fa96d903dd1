"""Responsible-gaming rules for time limits, self-exclusion and cool-off: pure, no I/O.

A player may always protect themselves at once and may only loosen a protection after a
cooling period: a new or lower session time limit applies now, a raise or removal waits
(24 hours by default). Self-exclusion and cool-off can be extended, never shortened. Money
limits (deposit, loss) are the wallet's; they are not modelled here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import Enum

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
SESSION_TIME_RANGE = (5 * MINUTE, 24 * HOUR)
REALITY_CHECK_RANGE = (5 * MINUTE, 4 * HOUR)
COOL_OFF_RANGE = (1 * DAY, 42 * DAY)
SELF_EXCLUSION_MIN_S = 183 * DAY
"""Six months, rounded up: half of a 366-day year, so no month boundary makes it shorter."""


class RuleError(ValueError):
    """A requested value is out of its allowed range; ``field`` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ChangeStatus(Enum):
    EFFECTIVE = "effective"
    PENDING = "pending"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Pending:
    """A raise or removal (value 0) waiting for its cooling period."""

    value_s: int
    effective_at: float


@dataclass(frozen=True)
class Change:
    """What happened to one requested change."""

    value_s: int
    status: ChangeStatus
    effective_at: float


@dataclass(frozen=True)
class Block:
    """Why a player may not play now: SELF_EXCLUDED or COOLING_OFF, until when (None: forever)."""

    reason: str
    until: float | None


@dataclass(frozen=True)
class RgState:
    """One player's time limits and exclusions; 0 means no limit."""

    session_time_limit_s: int = 0
    session_time_pending: Pending | None = None
    reality_check_s: int = 0
    excluded_until: float | None = None
    excluded_permanently: bool = False
    cool_off_until: float | None = None

    def at(self, now: float) -> RgState:
        """The state in force at ``now``: a pending change whose time has come is applied."""
        pending = self.session_time_pending
        if pending is not None and pending.effective_at <= now:
            return replace(self, session_time_limit_s=pending.value_s, session_time_pending=None)
        return self

    def block(self, now: float) -> Block | None:
        if self.excluded_permanently:
            return Block("SELF_EXCLUDED", None)
        if self.excluded_until is not None and self.excluded_until > now:
            return Block("SELF_EXCLUDED", self.excluded_until)
        if self.cool_off_until is not None and self.cool_off_until > now:
            return Block("COOLING_OFF", self.cool_off_until)
        return None

    def session_time_left(self, opened_at: float, now: float) -> float | None:
        """Seconds of play left in a session opened at ``opened_at``; None without a limit."""
        limit = self.at(now).session_time_limit_s
        return None if limit == 0 else opened_at + limit - now

    def to_json(self) -> str:
        pending = self.session_time_pending
        return json.dumps(
            {
                "stl": self.session_time_limit_s,
                "stp": None if pending is None else [pending.value_s, pending.effective_at],
                "rc": self.reality_check_s,
                "ex": self.excluded_until,
                "exp": self.excluded_permanently,
                "co": self.cool_off_until,
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> RgState:
        if not text:
            return cls()
        raw = json.loads(text)
        pending = raw.get("stp")
        return cls(
            session_time_limit_s=int(raw["stl"]),
            session_time_pending=None if pending is None else Pending(int(pending[0]), pending[1]),
            reality_check_s=int(raw["rc"]),
            excluded_until=raw.get("ex"),
            excluded_permanently=bool(raw.get("exp")),
            cool_off_until=raw.get("co"),
        )


def _check_range(field: str, value_s: int, bounds: tuple[int, int], allow_zero: bool) -> None:
    low, high = bounds
    if value_s == 0 and allow_zero:
        return
    if not low <= value_s <= high:
        zero = " or 0 for none" if allow_zero else ""
        raise RuleError(field, f"must be between {low} s and {high} s{zero}")


def set_session_time_limit(
    state: RgState, value_s: int, now: float, cooling_s: int
) -> tuple[RgState, Change]:
    """Lower or add at once; raise or remove after ``cooling_s``. A new request replaces a
    pending one, and asking for the limit in force cancels it."""
    _check_range("session_time_limit", value_s, SESSION_TIME_RANGE, allow_zero=True)
    current = state.at(now)
    in_force = current.session_time_limit_s
    if value_s == in_force:
        return replace(current, session_time_pending=None), Change(
            value_s, ChangeStatus.UNCHANGED, now
        )
    tighter = value_s != 0 and (in_force == 0 or value_s < in_force)
    if tighter:
        updated = replace(current, session_time_limit_s=value_s, session_time_pending=None)
        return updated, Change(value_s, ChangeStatus.EFFECTIVE, now)
    pending = Pending(value_s, now + cooling_s)
    updated = replace(current, session_time_pending=pending)
    return updated, Change(value_s, ChangeStatus.PENDING, pending.effective_at)


def set_reality_check(state: RgState, value_s: int, now: float) -> tuple[RgState, Change]:
    """The reality-check interval changes at once either way: it informs, it does not protect."""
    _check_range("reality_check_interval", value_s, REALITY_CHECK_RANGE, allow_zero=True)
    current = state.at(now)
    if value_s == current.reality_check_s:
        return current, Change(value_s, ChangeStatus.UNCHANGED, now)
    return replace(current, reality_check_s=value_s), Change(value_s, ChangeStatus.EFFECTIVE, now)


def self_exclude(
    state: RgState, duration_s: int | None, now: float, minimum_s: int = SELF_EXCLUSION_MIN_S
) -> RgState:
    """Exclude for ``duration_s`` (None: permanently); an existing longer exclusion stays."""
    current = state.at(now)
    if duration_s is None:
        return replace(current, excluded_permanently=True)
    if duration_s < minimum_s:
        raise RuleError("duration", f"must be at least {minimum_s} s")
    until = now + duration_s
    if current.excluded_until is not None:
        until = max(until, current.excluded_until)
    return replace(current, excluded_until=until)


def cool_off(state: RgState, duration_s: int, now: float) -> RgState:
    """A break of one day to six weeks; an existing longer break stays."""
    _check_range("duration", duration_s, COOL_OFF_RANGE, allow_zero=False)
    current = state.at(now)
    until = now + duration_s
    if current.cool_off_until is not None:
        until = max(until, current.cool_off_until)
    return replace(current, cool_off_until=until)
