"""The gRPC adapter of the player API: Protobuf to session domain calls and back.

Implemented here: the session lifecycle, responsible-gaming time limits and exclusions, the
lobby, seats, bets, blackjack decisions, the balance and the live table stream.

WatchTable answers pre-serialized bytes (``add_to_server`` registers it without a response
serializer): one table event is serialized once per process, not once per player.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.protobuf.timestamp_pb2 import Timestamp

from casino.common.v1 import common_pb2, limits_pb2
from casino.session.v1 import session_pb2, session_service_pb2, session_service_pb2_grpc
from casino.wallet.v1 import wallet_service_pb2
from casino_kit.errors import FailedPrecondition, FieldViolation, InvalidArgument
from casino_kit.validation import Violations
from session_svc import responsible
from session_svc.decisions import Decisions
from session_svc.feed import Feeds, Reminders
from session_svc.intake import Intake
from session_svc.responsible import Change, ChangeStatus, RgState, RuleError
from session_svc.sessions import Principal, Sessions, once
from session_svc.tables import Tables
from session_svc.upstream import relayed

SERVICE = session_service_pb2.DESCRIPTOR.services_by_name["SessionService"]
RAW_RESPONSES = {"WatchTable"}
MAX_PAGE_SIZE = 500

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


def add_to_server(servicer: Any, server: grpc.aio.Server) -> None:
    """Register the SessionService like the generated function, except that the methods in
    RAW_RESPONSES yield already serialized messages."""
    handlers = {}
    for method in SERVICE.methods:
        request = GetMessageClass(method.input_type)
        response = GetMessageClass(method.output_type)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=request.FromString,
            response_serializer=(
                None if method.name in RAW_RESPONSES else response.SerializeToString
            ),
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


def _table_id(request: Message, *required: str) -> str:
    """The request's table id, checked with the ``required`` fields, every violation at once."""
    checks = Violations()
    checks.require(request, *required, "table_id")
    table_id: str = request.table_id  # type: ignore[attr-defined]
    if len(table_id) > 128:
        checks.add("table_id", "must be at most 128 characters")
    checks.raise_if_any()
    return table_id


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    """The player API over the session domain."""

    def __init__(
        self,
        sessions: Sessions,
        tables: Tables,
        feeds: Feeds,
        intake: Intake,
        decisions: Decisions,
    ) -> None:
        self.sessions = sessions
        self.tables = tables
        self.feeds = feeds
        self.intake = intake
        self.decisions = decisions

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
        key = self.sessions.key(
            "idem", principal.session.platform_player_id, method, idempotency_key
        )

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

    async def ListTables(
        self,
        request: session_service_pb2.ListTablesRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.ListTablesResponse:
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument([FieldViolation("page_size", f"must be 0 to {MAX_PAGE_SIZE}")])
        principal = await self._principal(context)
        tables, next_page = await self.tables.lobby(
            principal.session.jurisdiction,
            principal.session.currency,
            request.game_type,
            request.page_size,
            request.page_token,
        )
        return session_service_pb2.ListTablesResponse(tables=tables, next_page_token=next_page)

    async def JoinTable(
        self,
        request: session_service_pb2.JoinTableRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.JoinTableResponse:
        table_id = _table_id(request, "idempotency_key")
        principal = await self._principal(context)

        async def run() -> session_service_pb2.JoinTableResponse:
            media = await self.tables.join(
                table_id,
                principal.session.platform_player_id,
                principal.session.jurisdiction,
                request.seat,
            )
            return session_service_pb2.JoinTableResponse(
                table_id=table_id, seat=request.seat, media_stream_id=media
            )

        return await self._once(
            principal, "join", request, session_service_pb2.JoinTableResponse, run
        )

    async def LeaveTable(
        self,
        request: session_service_pb2.LeaveTableRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.LeaveTableResponse:
        table_id = _table_id(request, "idempotency_key")
        principal = await self._principal(context)

        async def run() -> session_service_pb2.LeaveTableResponse:
            await self.tables.seating.leave(table_id, principal.session.platform_player_id)
            return session_service_pb2.LeaveTableResponse(table_id=table_id)

        return await self._once(
            principal, "leave", request, session_service_pb2.LeaveTableResponse, run
        )

    async def PlaceBets(
        self,
        request: session_service_pb2.PlaceBetsRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.PlaceBetsResponse:
        """Idempotent by the client's bet ids: a retry stakes nothing twice and gets each
        bet's first answer."""
        claims = self.sessions.verify(_metadata(context, "authorization"))
        with relayed():
            return await self.intake.place(claims, request)

    async def SubmitDecision(
        self,
        request: session_service_pb2.SubmitDecisionRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.SubmitDecisionResponse:
        principal = await self._principal(context)
        return await self.decisions.submit(principal, request)

    async def GetBalance(
        self,
        request: session_service_pb2.GetBalanceRequest,
        context: grpc.aio.ServicerContext,
    ) -> session_service_pb2.GetBalanceResponse:
        principal = await self._principal(context)
        with relayed():
            reply = await self.feeds.wallet.GetBalance(
                wallet_service_pb2.GetBalanceRequest(
                    player_id=principal.session.platform_player_id,
                    currency=principal.session.currency,
                )
            )
        return session_service_pb2.GetBalanceResponse(balance=reply.balance, in_play=reply.in_play)

    async def WatchTable(  # type: ignore[override]  # serialized once per event, see above
        self,
        request: session_service_pb2.WatchTableRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bytes]:
        table_id = _table_id(request)
        principal = await self._principal(context)
        session = principal.session
        if await self.tables.seating.seat_of(table_id, session.platform_player_id) is None:
            await self.tables.table(table_id)  # NOT_FOUND for a table that does not exist
            raise FailedPrecondition("NOT_AT_TABLE", f"join table {table_id} first")
        state = await self.sessions.rg_state(principal)
        time_left = state.session_time_left(session.opened_at, self.sessions.clock())
        reminders = Reminders(
            opened_at=session.opened_at,
            interval_s=state.reality_check_s,
            ends_at=None if time_left is None else self.sessions.clock() + time_left,
            currency=session.currency,
        )
        async for message in self.feeds.stream(
            table_id, session.platform_player_id, request.from_sequence, reminders
        ):
            yield message
