"""Responsible-gaming rules: tighten at once, loosen after the cooling period, never shorten."""

from __future__ import annotations

import pytest

from session_svc.responsible import (
    DAY,
    HOUR,
    MINUTE,
    ChangeStatus,
    Pending,
    RgState,
    RuleError,
    cool_off,
    self_exclude,
    set_reality_check,
    set_session_time_limit,
)

T0 = 1_800_000_000.0
COOLING = DAY


def test_a_new_limit_applies_at_once() -> None:
    state, change = set_session_time_limit(RgState(), HOUR, T0, COOLING)
    assert change.status is ChangeStatus.EFFECTIVE and change.effective_at == T0
    assert state.session_time_limit_s == HOUR


def test_a_lower_limit_applies_at_once_and_cancels_a_pending_raise() -> None:
    state, _ = set_session_time_limit(RgState(), HOUR, T0, COOLING)
    state, _ = set_session_time_limit(state, 2 * HOUR, T0, COOLING)
    state, change = set_session_time_limit(state, 30 * MINUTE, T0 + 10, COOLING)
    assert change.status is ChangeStatus.EFFECTIVE
    assert state.session_time_limit_s == 30 * MINUTE and state.session_time_pending is None


@pytest.mark.parametrize("raised", [2 * HOUR, 0])
def test_a_raise_or_removal_waits_the_cooling_period(raised: int) -> None:
    state, _ = set_session_time_limit(RgState(), HOUR, T0, COOLING)
    state, change = set_session_time_limit(state, raised, T0 + 5, COOLING)
    assert change.status is ChangeStatus.PENDING and change.effective_at == T0 + 5 + COOLING
    assert state.at(T0 + 5 + COOLING - 1).session_time_limit_s == HOUR
    assert state.at(T0 + 5 + COOLING).session_time_limit_s == raised
    assert state.at(T0 + 5 + COOLING).session_time_pending is None


def test_the_cooling_period_is_configurable() -> None:
    state, _ = set_session_time_limit(RgState(), HOUR, T0, 3 * DAY)
    _, change = set_session_time_limit(state, 2 * HOUR, T0, 3 * DAY)
    assert change.effective_at == T0 + 3 * DAY


def test_asking_for_the_limit_in_force_is_unchanged_and_drops_a_pending_raise() -> None:
    state = RgState(session_time_limit_s=HOUR, session_time_pending=Pending(0, T0 + DAY))
    state, change = set_session_time_limit(state, HOUR, T0, COOLING)
    assert change.status is ChangeStatus.UNCHANGED and state.session_time_pending is None


@pytest.mark.parametrize("bad", [1, 5 * MINUTE - 1, 24 * HOUR + 1])
def test_session_time_limits_out_of_range_are_refused(bad: int) -> None:
    with pytest.raises(RuleError) as refused:
        set_session_time_limit(RgState(), bad, T0, COOLING)
    assert refused.value.field == "session_time_limit"


def test_session_time_left_counts_from_the_session_start() -> None:
    state, _ = set_session_time_limit(RgState(), HOUR, T0, COOLING)
    assert state.session_time_left(T0, T0 + 10 * MINUTE) == 50 * MINUTE
    assert state.session_time_left(T0, T0 + HOUR) == 0
    assert RgState().session_time_left(T0, T0 + 100 * DAY) is None


def test_reality_check_changes_at_once_both_ways() -> None:
    state, change = set_reality_check(RgState(), 30 * MINUTE, T0)
    assert change.status is ChangeStatus.EFFECTIVE
    state, change = set_reality_check(state, 2 * HOUR, T0)
    assert change.status is ChangeStatus.EFFECTIVE and state.reality_check_s == 2 * HOUR
    _, change = set_reality_check(state, 2 * HOUR, T0)
    assert change.status is ChangeStatus.UNCHANGED
    with pytest.raises(RuleError):
        set_reality_check(state, 4 * HOUR + 1, T0)


def test_self_exclusion_blocks_until_its_end_and_is_never_shortened() -> None:
    state = self_exclude(RgState(), 200 * DAY, T0)
    block = state.block(T0 + DAY)
    assert block is not None and block.reason == "SELF_EXCLUDED"
    assert block.until == T0 + 200 * DAY
    shorter = self_exclude(state, 190 * DAY, T0 + DAY)
    assert shorter.excluded_until == T0 + 200 * DAY
    longer = self_exclude(state, 365 * DAY, T0 + DAY)
    assert longer.excluded_until == T0 + DAY + 365 * DAY
    assert state.block(T0 + 200 * DAY) is None


def test_permanent_self_exclusion_has_no_end() -> None:
    state = self_exclude(self_exclude(RgState(), None, T0), 200 * DAY, T0)
    block = state.block(T0 + 10_000 * DAY)
    assert block is not None and block.until is None


def test_self_exclusion_below_six_months_is_refused() -> None:
    with pytest.raises(RuleError):
        self_exclude(RgState(), 182 * DAY, T0)


def test_cool_off_blocks_and_is_bounded() -> None:
    state = cool_off(RgState(), 2 * DAY, T0)
    block = state.block(T0 + DAY)
    assert block is not None and block.reason == "COOLING_OFF" and block.until == T0 + 2 * DAY
    assert cool_off(state, DAY, T0).cool_off_until == T0 + 2 * DAY
    for bad in (DAY - 1, 42 * DAY + 1):
        with pytest.raises(RuleError):
            cool_off(RgState(), bad, T0)


def test_state_survives_json() -> None:
    state = RgState(
        session_time_limit_s=HOUR,
        session_time_pending=Pending(0, T0 + DAY),
        reality_check_s=30 * MINUTE,
        excluded_until=T0 + 200 * DAY,
        excluded_permanently=False,
        cool_off_until=T0 + DAY,
    )
    assert RgState.from_json(state.to_json()) == state
    assert RgState.from_json(None) == RgState()
