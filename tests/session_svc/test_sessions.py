"""The session domain over each store: open, authenticate, refresh, close, revoke, rate-limit."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from casino_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from session_svc import responsible
from session_svc.sessions import Policy, Sessions, once
from session_svc.store import Store
from session_svc.tokens import HS256, SessionClaims, SignKey, issue_session, parse_operator_keys
from tests.session_svc.operator import Operator, operator_keys_json

SERVICE_KEY = SignKey(HS256, secret=b"s" * 32)


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def operator() -> Operator:
    return Operator("op-1")


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


def make_sessions(
    store: Store, prefix: str, operator: Operator, clock: Clock, **policy: object
) -> Sessions:
    return Sessions(
        store,
        prefix=prefix,
        operator_keys=parse_operator_keys(operator_keys_json(operator)),
        session_key=SERVICE_KEY,
        policy=Policy(**policy),  # type: ignore[arg-type]
        clock=clock,
    )


@pytest.fixture
def sessions(store: Store, prefix: str, operator: Operator, clock: Clock) -> Sessions:
    return make_sessions(store, prefix, operator, clock)


async def refused(call: object) -> DomainError:
    with pytest.raises(DomainError) as failure:
        await call  # type: ignore[misc]
    return failure.value


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def test_open_then_authenticate(sessions: Sessions, operator: Operator) -> None:
    session, issued = await sessions.open("op-1", operator.launch_token("alice"), "k1")
    assert (session.player_id, session.currency, session.jurisdiction) == ("alice", "EUR", "MT")
    assert issued.expires_at - int(sessions.clock()) == 300
    principal = await sessions.authenticate(bearer(issued.token))
    assert principal.session == session
    again = await sessions.authenticate(f"bearer  {issued.token}")  # the scheme ignores case
    assert again.session == session


async def test_a_replayed_launch_token_is_refused(sessions: Sessions, operator: Operator) -> None:
    token = operator.launch_token("alice")
    await sessions.open("op-1", token, "k1")
    error = await refused(sessions.open("op-1", token, "k2"))
    assert isinstance(error, Unauthenticated) and error.reason == "LAUNCH_TOKEN_INVALID"


async def test_a_retry_with_the_same_key_gets_the_same_session(
    sessions: Sessions, operator: Operator
) -> None:
    token = operator.launch_token("alice")
    first = await sessions.open("op-1", token, "k1")
    assert await sessions.open("op-1", token, "k1") == first


async def test_concurrent_opens_with_one_token_make_one_session(
    sessions: Sessions, operator: Operator
) -> None:
    token = operator.launch_token("alice")
    results = await asyncio.gather(
        *(sessions.open("op-1", token, f"k{i}") for i in range(10)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1


async def test_the_nonce_is_per_operator(
    store: Store, prefix: str, operator: Operator, clock: Clock
) -> None:
    other = Operator("op-2")
    sessions = Sessions(
        store,
        prefix=prefix,
        operator_keys=parse_operator_keys(operator_keys_json(operator, other)),
        session_key=SERVICE_KEY,
        policy=Policy(),
        clock=clock,
    )
    claims = operator.claims("alice")
    await sessions.open("op-1", operator.sign(claims), "k")
    await sessions.open("op-2", other.sign({**claims, "iss": "op-2"}), "k")


async def test_unknown_operator_and_expired_launch_token_are_refused(
    sessions: Sessions, operator: Operator, clock: Clock
) -> None:
    token = operator.launch_token("alice")
    for error in (
        await refused(sessions.open("op-9", token, "k")),
        await refused(sessions.open("op-1", operator.launch_token("a", iss="op-9"), "k")),
    ):
        assert error.reason == "LAUNCH_TOKEN_INVALID"
    clock.now += 121
    error = await refused(sessions.open("op-1", token, "k"))
    assert isinstance(error, Unauthenticated) and error.reason == "LAUNCH_TOKEN_INVALID"


async def test_an_expired_session_token_is_refused(
    sessions: Sessions, operator: Operator, clock: Clock
) -> None:
    _, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    clock.now += 301
    error = await refused(sessions.authenticate(bearer(issued.token)))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_EXPIRED"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer a.b.c"])
async def test_missing_or_malformed_bearer_is_refused(
    sessions: Sessions, header: str | None
) -> None:
    error = await refused(sessions.authenticate(header))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_INVALID"


async def test_a_forged_session_token_is_refused(sessions: Sessions, operator: Operator) -> None:
    session, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    claims = SessionClaims(
        session.session_id, "op-1", "alice", "EUR", "MT", int(time.time()), issued.expires_at
    )
    forged = issue_session(claims, SignKey(HS256, secret=b"f" * 32))
    error = await refused(sessions.authenticate(bearer(forged)))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_INVALID"


async def test_a_token_naming_another_player_is_denied(
    sessions: Sessions, operator: Operator
) -> None:
    """Even a correctly signed token cannot move a session to another player."""
    alice, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    claims = SessionClaims(
        alice.session_id, "op-1", "bob", "EUR", "MT", int(time.time()), issued.expires_at
    )
    error = await refused(sessions.authenticate(bearer(issue_session(claims, SERVICE_KEY))))
    assert isinstance(error, PermissionDenied)


async def test_close_revokes_every_token_of_the_session(
    sessions: Sessions, operator: Operator
) -> None:
    _, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    principal = await sessions.authenticate(bearer(issued.token))
    refreshed = await sessions.refresh(principal)
    await sessions.close(principal)
    for token in (issued.token, refreshed.token):
        error = await refused(sessions.authenticate(bearer(token)))
        assert error.reason == "SESSION_INVALID"


async def test_refresh_keeps_the_session_alive_past_the_first_token(
    sessions: Sessions, operator: Operator, clock: Clock
) -> None:
    _, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    clock.now += 200
    refreshed = await sessions.refresh(await sessions.authenticate(bearer(issued.token)))
    clock.now += 200
    await sessions.authenticate(bearer(refreshed.token))
    error = await refused(sessions.authenticate(bearer(issued.token)))
    assert error.reason == "SESSION_EXPIRED"


async def test_refresh_is_refused_once_the_session_time_limit_is_used(
    sessions: Sessions, operator: Operator, clock: Clock
) -> None:
    _, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    principal = await sessions.authenticate(bearer(issued.token))
    await sessions.update_rg(
        principal,
        lambda s, now: responsible.set_session_time_limit(s, 5 * 60, now, 86400)[0],
    )
    clock.now += 4 * 60
    principal = await sessions.authenticate(bearer((await sessions.refresh(principal)).token))
    clock.now += 61
    error = await refused(sessions.refresh(principal))
    assert isinstance(error, FailedPrecondition)
    assert error.reason == "LIMIT_EXCEEDED_SESSION_TIME"


async def test_the_rate_limit_refuses_with_retry_information(
    store: Store, prefix: str, operator: Operator, clock: Clock
) -> None:
    sessions = make_sessions(store, prefix, operator, clock, rate_per_s=2.0, rate_burst=3)
    _, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    _, other = await sessions.open("op-1", operator.launch_token("bob"), "k")
    for _ in range(3):
        await sessions.authenticate(bearer(issued.token))
    error = await refused(sessions.authenticate(bearer(issued.token)))
    assert isinstance(error, ResourceExhausted) and error.reason == "RATE_LIMITED"
    assert 0 < int(error.metadata["retry_after_ms"]) <= 500
    await sessions.authenticate(bearer(other.token))  # per player: bob is not limited


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s, now: responsible.self_exclude(s, None, now), "SELF_EXCLUDED"),
        (lambda s, now: responsible.cool_off(s, 86400, now), "COOLING_OFF"),
    ],
)
async def test_exclusion_revokes_sessions_and_refuses_new_ones(
    sessions: Sessions, operator: Operator, change: object, reason: str
) -> None:
    _, first = await sessions.open("op-1", operator.launch_token("alice"), "k")
    _, second = await sessions.open("op-1", operator.launch_token("alice"), "k")
    principal = await sessions.authenticate(bearer(first.token))
    await sessions.update_rg(principal, change)  # type: ignore[arg-type]
    for token in (first.token, second.token):
        error = await refused(sessions.authenticate(bearer(token)))
        assert error.reason == "SESSION_INVALID"
    assert await sessions.authenticate(bearer(first.token), allow_blocked=True)
    error = await refused(sessions.open("op-1", operator.launch_token("alice"), "k"))
    assert isinstance(error, FailedPrecondition) and error.reason == reason


async def test_a_blocked_jurisdiction_is_refused(
    store: Store, prefix: str, operator: Operator, clock: Clock
) -> None:
    sessions = make_sessions(store, prefix, operator, clock, allowed_jurisdictions=("MT",))
    error = await refused(sessions.open("op-1", operator.launch_token("a", jur="US-NV"), "k"))
    assert isinstance(error, PermissionDenied) and error.reason == "JURISDICTION_BLOCKED"


async def test_once_answers_a_repeat_and_refuses_another_payload(store: Store, prefix: str) -> None:
    calls: list[str] = []

    async def run() -> bytes:
        calls.append("ran")
        return json.dumps(len(calls)).encode()

    assert await once(store, prefix + "idem", "fp-1", run) == b"1"
    assert await once(store, prefix + "idem", "fp-1", run) == b"1"
    assert calls == ["ran"]
    error = await refused(once(store, prefix + "idem", "fp-2", run))
    assert isinstance(error, AlreadyExists) and error.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_concurrent_rg_changes_never_lose_an_exclusion(
    sessions: Sessions, operator: Operator
) -> None:
    """A limit change racing a self-exclusion (two nodes, one store) keeps the exclusion."""
    _, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    principal = await sessions.authenticate(bearer(issued.token))
    limits = [30 * 60 - 60 * i for i in range(20)]

    def setter(limit: int) -> Callable[[responsible.RgState, float], responsible.RgState]:
        return lambda s, now: responsible.set_session_time_limit(s, limit, now, 86400)[0]

    await asyncio.gather(
        *(sessions.update_rg(principal, setter(v)) for v in limits[:10]),
        sessions.update_rg(principal, lambda s, now: responsible.self_exclude(s, None, now)),
        *(sessions.update_rg(principal, setter(v)) for v in limits[10:]),
    )
    state = await sessions.rg_state(principal)
    assert state.excluded_permanently
    assert state.session_time_limit_s == min(limits)  # every lowering applied, none lost


async def test_a_refresh_cannot_reopen_a_closed_session(
    sessions: Sessions, operator: Operator
) -> None:
    _, issued = await sessions.open("op-1", operator.launch_token("alice"), "k")
    principal = await sessions.authenticate(bearer(issued.token))
    await sessions.close(principal)
    error = await refused(sessions.refresh(principal))  # authenticated before the close
    assert error.reason == "SESSION_INVALID"
    error = await refused(sessions.authenticate(bearer(issued.token)))
    assert error.reason == "SESSION_INVALID"
    closed = await sessions.authenticate(bearer(issued.token), allow_closed=True)
    assert closed.session.closed_at is not None
