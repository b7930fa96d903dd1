"""The gRPC adapter of the player API: Protobuf to session domain calls and back.

Implemented here: the session lifecycle and responsible-gaming time limits and exclusions.
The table, bet and balance RPCs need game_svc and wallet_svc and still answer UNIMPLEMENTED
(inherited from the generated base class).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from casino.common.v1 import common_pb2, limits_pb2
from casino.session.v1 import session_pb2, session_service_pb2, session_service_pb2_grpc
from casino_kit.errors import FieldViolation, InvalidArgument
from casino_kit.validation import Violations
from session_svc import responsible
from session_svc.responsible import Change, ChangeStatus, RgState, RuleError
from session_svc.sessions import Principal, Sessions, once

M = TypeVar("M", bound=Message)

_STATUS = {
    ChangeStatus.EFFECTIVE: limits_pb2.LIMIT_CHANGE_STATUS_EFFECTIVE,
    ChangeStatus.PENDING: limits_pb2.LIMIT_CHANGE_STATUS_PENDING,
    ChangeStatus.UNCHANGED: limits_pb2.LIMIT_CHANGE_STATUS_UNCHANGED,
}


def timestamp(at: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(at * 1e9))
    return stamp


def duration(seconds: float) -> Duration:
    value = Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def whole_seconds(value: Duration, field: str) -> int:
    """A request duration in whole seconds; fractions and negatives are bad input."""
    if value.nanos != 0 or value.seconds < 0:
        raise InvalidArgument([FieldViolation(field, "must be a whole, non-negative second count")])
    return int(value.seconds)


def _change(change: Change) -> session_pb2.DurationLimitChange:
    return session_pb2.DurationLimitChange(
        value=duration(change.value_s),
        status=_STATUS[change.status],
        effective_at=timestamp(change.effective_at),
    )


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None


def _require_key(request: Message) -> None:
    checks = Violations()
    checks.require(request, "idempotency_key")
    checks.raise_if_any()


def _fingerprint(request: Message) -> str:
    """The request without its idempotency key: what a repeat of the key must match."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    """The player API over the session domain."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def _principal(
        self,
        context: grpc.aio.ServicerContext,
        *,
        allow_blocked: bool = False,
        allow_closed: bool = False,
    ) -> Principal:
        return await self.sessions.authenticate(
            _metadata(context, "authorization"),
            allow_blocked=allow_blocked,
            allow_closed=allow_closed,
        )

    async def _once(
        self,
        principal: Principal,
        method: str,
        request: Message,
        reply_type: type[M],
        run: Callable[[], Awaitable[M]],
    ) -> M:
        """Answer a repeat of the same idempotency key with the first answer."""
        idempotency_key: str = request.idempotency_key  # type: ignore[attr-defined]
        key = self.sessions.key("idem", principal.player_key, method, idempotency_key)

        async def body() -> bytes:
            return (await run()).SerializeToString()

        reply = reply_type()
        reply.ParseFromString(await once(self.sessions.store, key, _fingerprint(request), body))
        return reply

    async def OpenSession(
        self,
        request: session_service_pb2.OpenSessionRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.OpenSessionResponse:
        checks = Violations()
        checks.require(request, "idempotency_key", "operator_id", "launch_token")
        checks.raise_if_any()
        session, issued = await self.sessions.open(
            request.operator_id, request.launch_token, request.idempotency_key, request.locale
        )
        return session_service_pb2.OpenSessionResponse(
            session_token=issued.token,
            expires_at=timestamp(issued.expires_at),
            session_id=session.session_id,
            player_id=session.player_id,
            currency=session.currency,
            jurisdiction=session.jurisdiction,
            opened_at=timestamp(session.opened_at),
        )

    async def RefreshSession(
        self,
        request: session_service_pb2.RefreshSessionRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.RefreshSessionResponse:
        _require_key(request)
        principal = await self._principal(context)

        async def run() -> session_service_pb2.RefreshSessionResponse:
            issued = await self.sessions.refresh(principal)
            return session_service_pb2.RefreshSessionResponse(
                session_token=issued.token, expires_at=timestamp(issued.expires_at)
            )

        return await self._once(
            principal, "refresh", request, session_service_pb2.RefreshSessionResponse, run
        )

    async def CloseSession(
        self,
        request: session_service_pb2.CloseSessionRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.CloseSessionResponse:
        _require_key(request)
        principal = await self._principal(context, allow_blocked=True, allow_closed=True)

        async def run() -> session_service_pb2.CloseSessionResponse:
            closed_at = await self.sessions.close(principal)
            # Bet intake is not wired yet, so no stake can have been taken in any session:
            # the session totals are truly zero until PlaceBets lands and records them.
            zero = common_pb2.Money(amount_minor=0, currency=principal.session.currency)
            return session_service_pb2.CloseSessionResponse(
                closed_at=timestamp(closed_at),
                duration=duration(closed_at - principal.session.opened_at),
                total_staked=zero,
                total_paid=zero,
                net_position=zero,
            )

        return await self._once(
            principal, "close", request, session_service_pb2.CloseSessionResponse, run
        )

    async def SetResponsibleGamingLimits(
        self,
        request: session_service_pb2.SetResponsibleGamingLimitsRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.SetResponsibleGamingLimitsResponse:
        _require_key(request)
        if request.money_limits:
            # Deposit and loss limits are the wallet's; forwarding them is not wired yet, and
            # accepting them silently would pretend a protection that does not exist.
            raise InvalidArgument(
                [FieldViolation("money_limits", "money limits are not supported yet")]
            )
        limit = self._optional_seconds(request, "session_time_limit")
        interval = self._optional_seconds(request, "reality_check_interval")
        principal = await self._principal(context)
        cooling = self.sessions.policy.rg_cooling_s

        async def run() -> session_service_pb2.SetResponsibleGamingLimitsResponse:
            changes: dict[str, Change] = {}

            def apply(state: RgState, now: float) -> RgState:
                changes.clear()
                if limit is not None:
                    state, changes["limit"] = responsible.set_session_time_limit(
                        state, limit, now, cooling
                    )
                if interval is not None:
                    state, changes["interval"] = responsible.set_reality_check(state, interval, now)
                return state

            await self._rule(lambda: self.sessions.update_rg(principal, apply))
            reply = session_service_pb2.SetResponsibleGamingLimitsResponse()
            if "limit" in changes:
                reply.session_time_limit.CopyFrom(_change(changes["limit"]))
            if "interval" in changes:
                reply.reality_check_interval.CopyFrom(_change(changes["interval"]))
            return reply

        return await self._once(
            principal,
            "set_limits",
            request,
            session_service_pb2.SetResponsibleGamingLimitsResponse,
            run,
        )

    @staticmethod
    def _optional_seconds(request: Message, field: str) -> int | None:
        if not request.HasField(field):
            return None
        return whole_seconds(getattr(request, field), field)

    @staticmethod
    async def _rule(call: Callable[[], Awaitable[RgState]]) -> RgState:
        try:
            return await call()
        except RuleError as error:
            raise InvalidArgument([FieldViolation(error.field, str(error))]) from None

    async def GetResponsibleGamingLimits(
        self,
        request: session_service_pb2.GetResponsibleGamingLimitsRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.GetResponsibleGamingLimitsResponse:
        principal = await self._principal(context)
        state = await self.sessions.rg_state(principal)
        reply = session_service_pb2.GetResponsibleGamingLimitsResponse(
            session_started_at=timestamp(principal.session.opened_at)
        )
        if state.session_time_limit_s:
            reply.session_time_limit.CopyFrom(duration(state.session_time_limit_s))
        pending = state.session_time_pending
        if pending is not None:
            reply.session_time_limit_pending.CopyFrom(
                _change(Change(pending.value_s, ChangeStatus.PENDING, pending.effective_at))
            )
        if state.reality_check_s:
            reply.reality_check_interval.CopyFrom(duration(state.reality_check_s))
        return reply

    async def SelfExclude(
        self,
        request: session_service_pb2.SelfExcludeRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.SelfExcludeResponse:
        _require_key(request)
        has_duration = request.HasField("duration")
        if has_duration == request.permanent:
            raise InvalidArgument(
                [FieldViolation("duration", "set exactly one of duration and permanent")]
            )
        length = whole_seconds(request.duration, "duration") if has_duration else None
        minimum = self.sessions.policy.self_exclusion_min_s
        principal = await self._principal(context, allow_blocked=True)

        async def run() -> session_service_pb2.SelfExcludeResponse:
            started = self.sessions.clock()
            state = await self._rule(
                lambda: self.sessions.update_rg(
                    principal,
                    lambda s, now: responsible.self_exclude(s, length, now, minimum),
                )
            )
            reply = session_service_pb2.SelfExcludeResponse(starts_at=timestamp(started))
            if not state.excluded_permanently and state.excluded_until is not None:
                reply.ends_at.CopyFrom(timestamp(state.excluded_until))
            return reply

        return await self._once(
            principal, "self_exclude", request, session_service_pb2.SelfExcludeResponse, run
        )

    async def CoolOff(
        self,
        request: session_service_pb2.CoolOffRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.CoolOffResponse:
        checks = Violations()
        checks.require(request, "idempotency_key", "duration")
        checks.raise_if_any()
        length = whole_seconds(request.duration, "duration")
        principal = await self._principal(context, allow_blocked=True)

        async def run() -> session_service_pb2.CoolOffResponse:
            started = self.sessions.clock()
            state = await self._rule(
                lambda: self.sessions.update_rg(
                    principal, lambda s, now: responsible.cool_off(s, length, now)
                )
            )
            assert state.cool_off_until is not None
            return session_service_pb2.CoolOffResponse(
                starts_at=timestamp(started), ends_at=timestamp(state.cool_off_until)
            )

        return await self._once(
            principal, "cool_off", request, session_service_pb2.CoolOffResponse, run
        )
