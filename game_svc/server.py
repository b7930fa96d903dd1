"""The gRPC adapter: Protobuf requests to domain and storage calls, results back to Protobuf.

What runs: tables (create, list, read, suspend, resume), roulette, baccarat and blackjack
rounds driven by the replica that owns the table (``floor.py``), bet intake, blackjack
decisions, operator voids, the table event stream with resume, and recall. Studio tables
take their rounds from ``ApplyStudioEvent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2, table_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino_kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from casino_kit.validation import MAX_AMOUNT_MINOR, Violations
from game_svc import recall
from game_svc.bets import BetType
from game_svc.blackjack_loop import BlackjackTable
from game_svc.clock import Clock, timestamp, utcnow
from game_svc.convert import rules_of
from game_svc.events import EventLog, FellBehind
from game_svc.floor import Floor
from game_svc.ids import new_id
from game_svc.peers import FORWARDED
from game_svc.store import Answer, RoundMissing, RoundRow, Store, TableMissing, TableRow
from game_svc.studio import StudioLoop

GAME_OF_TYPE = {1: "roulette", 2: "baccarat", 3: "blackjack"}
MAX_BATCH = 1000
ACTIONS = frozenset(range(1, 6))
"""The contract's BlackjackAction values, HIT to INSURANCE."""


@dataclass(frozen=True)
class Parts:
    """What the servicers use, alive between start and stop."""

    store: Store
    log: EventLog
    floor: Floor


def table_not_found(table_id: str) -> NotFound:
    return NotFound("TABLE_NOT_FOUND", f"no table {table_id}", metadata={"table_id": table_id})


def round_not_found(round_id: str) -> NotFound:
    return NotFound("ROUND_NOT_FOUND", f"no round {round_id}", metadata={"round_id": round_id})


def table_message(row: TableRow, latest: RoundRow | None) -> game_pb2.Table:
    config = row.config
    table = game_pb2.Table(
        summary=table_pb2.TableSummary(
            table_id=row.table_id,
            name=config.name,
            game_type=config.game_type,
            currency=config.currency,
            status=common_pb2.TableStatus.ValueType(row.status),
            limits=config.limits,
            seat_count=config.seat_count,
            free_seats=config.seat_count,
            media_stream_id=config.media_stream_id,
        ),
        config=config,
        created_at=timestamp(row.created_at),
        last_sequence=row.last_sequence,
    )
    if latest is not None:
        record = latest.record
        table.summary.round_id = record.round_id
        table.summary.phase = record.phase
        if record.phase == common_pb2.ROUND_PHASE_OPEN:
            table.summary.betting_closes_at.CopyFrom(timestamp(latest.closes_at))
        if record.phase in (common_pb2.ROUND_PHASE_OPEN, common_pb2.ROUND_PHASE_BETS_CLOSED):
            table.commitment.CopyFrom(record.commitment)
    return table


def check_mutation(request: Message, violations: Violations) -> None:
    """The audit fields every admin call carries."""
    violations.require(request, "idempotency_key", "operator_id", "reason")
    key: str = getattr(request, "idempotency_key", "")
    if len(key) > 128 or not all(" " <= c <= "~" for c in key):
        violations.add("idempotency_key", "must be at most 128 printable ASCII characters")


def check_config(config: game_pb2.TableConfig, violations: Violations) -> None:
    """A table configuration that can run: every contract rule of ``TableConfig``."""
    path = "config"
    if not 1 <= len(config.name) <= 64:
        violations.add(f"{path}.name", "must be 1 to 64 characters")
    game = GAME_OF_TYPE.get(config.game_type)
    if game is None:
        violations.add(f"{path}.game_type", "must be ROULETTE, BACCARAT or BLACKJACK")
    if config.result_source == game_pb2.RESULT_SOURCE_STUDIO:
        if not config.studio_id:
            violations.add(f"{path}.studio_id", "is required for studio tables")
    elif config.result_source == game_pb2.RESULT_SOURCE_RNG:
        if config.studio_id:
            violations.add(f"{path}.studio_id", "must be empty for RNG tables")
    else:
        violations.add(f"{path}.result_source", "must be RNG or STUDIO")
    if not 5 <= config.betting_window_seconds <= 120:
        violations.add(f"{path}.betting_window_seconds", "must be 5 to 120")
    currency = config.currency
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        violations.add(f"{path}.currency", "must be an ISO-4217 code such as EUR")
    elif not currency.isupper():
        violations.add(f"{path}.currency", "must be upper case")
    check_limits(config, game, violations)
    check_blackjack(config, game, violations)


def check_limits(config: game_pb2.TableConfig, game: str | None, violations: Violations) -> None:
    limits = config.limits.bet_limits
    if not limits:
        violations.add("config.limits.bet_limits", "must offer at least one bet type")
    seen: set[int] = set()
    for i, limit in enumerate(limits):
        path = f"config.limits.bet_limits[{i}]"
        try:
            bet_type = BetType(limit.bet_type)
        except ValueError:
            violations.add(f"{path}.bet_type", "is not a bet type")
            continue
        if game is not None and bet_type.game != game:
            violations.add(f"{path}.bet_type", f"{bet_type.name} is not a {game} bet")
        if limit.bet_type in seen:
            violations.add(f"{path}.bet_type", "is listed twice")
        seen.add(limit.bet_type)
        for name in ("min_stake", "max_stake"):
            check_amount(getattr(limit, name), f"{path}.{name}", config.currency, violations)
        if limit.max_stake.amount_minor < limit.min_stake.amount_minor:
            violations.add(f"{path}.max_stake", "must be at least min_stake")
    if config.limits.HasField("max_round_stake"):
        check_amount(
            config.limits.max_round_stake,
            "config.limits.max_round_stake",
            config.currency,
            violations,
        )


def check_amount(money: common_pb2.Money, path: str, currency: str, violations: Violations) -> None:
    if not 0 < money.amount_minor <= MAX_AMOUNT_MINOR:
        violations.add(f"{path}.amount_minor", f"must be 1 to {MAX_AMOUNT_MINOR}")
    if money.currency != currency:
        violations.add(f"{path}.currency", "must be the table's currency")


def check_blackjack(config: game_pb2.TableConfig, game: str | None, violations: Violations) -> None:
    if game != "blackjack":
        if config.HasField("blackjack"):
            violations.add("config.blackjack", "must be unset for this game")
        if config.seat_count:
            violations.add("config.seat_count", "must be 0 for this game")
        return
    if not config.HasField("blackjack"):
        violations.add("config.blackjack", "is required for blackjack")
        return
    try:
        rules_of(config)
    except ValueError as error:
        violations.add("config.blackjack", str(error))


def request_hash(request: Message) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


class Idempotent:
    """Replays a mutating call's first answer; the same key with another payload fails."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def replay(self, operation: str, key: str, digest: str) -> bytes | None:
        known = await self.store.remembered(operation, key)
        if known is None:
            return None
        if known.request_hash != digest:
            raise AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                f"idempotency key {key!r} was used with a different request",
            )
        return known.response


def forwarded_call(context: grpc.aio.ServicerContext) -> bool:
    return any(key == FORWARDED for key, _ in context.invocation_metadata() or ())


def page_size(requested: int, violations: Violations) -> int:
    if not 0 <= requested <= 500:
        violations.add("page_size", "must be 0 to 500")
    return requested or 50


class GameServicer(game_service_pb2_grpc.GameServiceServicer):
    """Tables, bets, the event stream and recall."""

    def __init__(self, runtime: Callable[[], Parts]) -> None:
        self._runtime = runtime

    async def ListTables(
        self, request: game_service_pb2.ListTablesRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.ListTablesResponse:
        violations = Violations()
        size = page_size(request.page_size, violations)
        offset = 0
        if request.page_token:
            if not request.page_token.isdigit():
                violations.add("page_token", "is not a token this service returned")
            else:
                offset = int(request.page_token)
        violations.raise_if_any()
        store = self._runtime().store

        def listed(row: TableRow) -> bool:
            config = row.config
            return (
                (not request.game_type or config.game_type == request.game_type)
                and (not request.currency or config.currency == request.currency)
                and (
                    not request.jurisdiction
                    or not config.jurisdictions
                    or request.jurisdiction in config.jurisdictions
                    or request.jurisdiction.split("-")[0] in config.jurisdictions
                )
            )

        rows = sorted(
            (row for row in await store.all_tables() if listed(row)),
            key=lambda row: (row.config.name, row.table_id),
        )
        page = rows[offset : offset + size]
        response = game_service_pb2.ListTablesResponse(
            tables=[
                table_message(row, await store.latest_round(row.table_id)).summary for row in page
            ]
        )
        if offset + size < len(rows):
            response.next_page_token = str(offset + size)
        return response

    async def GetTable(
        self, request: game_service_pb2.GetTableRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.GetTableResponse:
        violations = Violations()
        violations.require(request, "table_id")
        violations.raise_if_any()
        store = self._runtime().store
        try:
            row = await store.table(request.table_id)
        except TableMissing:
            raise table_not_found(request.table_id) from None
        latest = await store.latest_round(row.table_id)
        return game_service_pb2.GetTableResponse(table=table_message(row, latest))

    async def Subscribe(
        self, request: game_service_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[game_service_pb2.SubscribeResponse]:
        violations = Violations()
        violations.require(request, "table_id")
        violations.raise_if_any()
        log = self._runtime().log
        try:
            async for event in log.subscribe(request.table_id, request.from_sequence):
                yield game_service_pb2.SubscribeResponse(event=event)
        except TableMissing:
            raise table_not_found(request.table_id) from None
        except FellBehind as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    async def PlaceBets(
        self,
        request_iterator: AsyncIterator[game_service_pb2.PlaceBetsRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[game_service_pb2.PlaceBetsResponse]:
        """Batches are answered concurrently, each as soon as its stakes are committed."""
        answers: asyncio.Queue[game_service_pb2.PlaceBetsResponse | None] = asyncio.Queue()
        pending: set[asyncio.Task[None]] = set()

        forwarded = forwarded_call(context)

        async def answer(batch: game_service_pb2.PlaceBetsRequest) -> None:
            results = await self._place(batch, forwarded)
            await answers.put(
                game_service_pb2.PlaceBetsResponse(
                    batch_id=batch.batch_id,
                    table_id=batch.table_id,
                    round_id=batch.round_id,
                    results=results,
                )
            )

        async def read() -> None:
            async for batch in request_iterator:
                task = asyncio.get_running_loop().create_task(answer(batch))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*list(pending))
            await answers.put(None)

        reader = asyncio.get_running_loop().create_task(read())
        try:
            while (response := await answers.get()) is not None:
                yield response
            await reader
        finally:
            reader.cancel()
            for task in list(pending):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _place(
        self, batch: game_service_pb2.PlaceBetsRequest, forwarded: bool
    ) -> list[game_pb2.BetResult]:
        def everyone(reason: str) -> list[game_pb2.BetResult]:
            return [
                game_pb2.BetResult(
                    bet_id=bet.bet_id, status=bet_pb2.BET_STATUS_REJECTED, reason=reason
                )
                for bet in batch.bets
            ]

        malformed = (
            not (batch.batch_id and batch.idempotency_key and batch.table_id and batch.round_id)
            or not 1 <= len(batch.bets) <= MAX_BATCH
            or any(
                not (bet.bet_id and bet.player_id)
                or not 0 < bet.stake.amount_minor <= MAX_AMOUNT_MINOR
                for bet in batch.bets
            )
        )
        if malformed:
            return everyone("INVALID_BET")
        floor = self._runtime().floor
        loop = floor.loop(batch.table_id)
        if loop is None and not forwarded:
            try:
                owner = await floor.owner(batch.table_id)
            except Unavailable as error:  # nothing was taken: the bets may be sent again
                return everyone(error.reason)
            if owner:
                try:
                    return await floor.peers.place(owner, batch)
                except grpc.aio.AioRpcError:
                    return everyone("BETTING_CLOSED")  # the owner is gone: its round is voided
        if loop is None:
            store = self._runtime().store
            try:
                row = await store.table(batch.table_id)
            except TableMissing:
                return everyone("TABLE_NOT_FOUND")
            suspended = row.status != common_pb2.TABLE_STATUS_ACTIVE
            return everyone("TABLE_SUSPENDED" if suspended else "BETTING_CLOSED")
        return await loop.place(batch)

    async def SubmitDecision(
        self, request: game_service_pb2.SubmitDecisionRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.SubmitDecisionResponse:
        violations = Violations()
        violations.require(request, "idempotency_key", "table_id", "round_id", "player_id", "hand")
        if request.action not in ACTIONS:
            violations.add("action", "must be HIT, STAND, DOUBLE, SPLIT or INSURANCE")
        violations.raise_if_any()
        parts = self._runtime()
        digest = request_hash(request)
        idempotent = Idempotent(parts.store)
        replayed = await idempotent.replay("SubmitDecision", request.idempotency_key, digest)
        if replayed is not None:
            return game_service_pb2.SubmitDecisionResponse.FromString(replayed)
        floor = parts.floor
        loop = floor.loop(request.table_id)
        if loop is None and not forwarded_call(context):
            owner = await floor.owner(request.table_id)
            if owner is not None:
                try:
                    return await floor.peers.decide(owner, request)
                except grpc.aio.AioRpcError as error:  # the owner's answer, as it gave it
                    await context.abort(
                        error.code(), error.details() or "", error.trailing_metadata()
                    )
        if not isinstance(loop, BlackjackTable):
            raise FailedPrecondition(
                "DECISION_NOT_EXPECTED", f"table {request.table_id} takes no decisions here"
            )
        answer = Answer("SubmitDecision", request.idempotency_key, digest, lambda _: b"")
        try:
            return await loop.decide(request, answer)
        except FailedPrecondition:
            # The same call, retried while its first attempt ran, finds the decision taken.
            replayed = await idempotent.replay("SubmitDecision", request.idempotency_key, digest)
            if replayed is not None:
                return game_service_pb2.SubmitDecisionResponse.FromString(replayed)
            raise

    async def ApplyStudioEvent(
        self,
        request: game_service_pb2.ApplyStudioEventRequest,
        context: grpc.aio.ServicerContext,
    ) -> game_service_pb2.ApplyStudioEventResponse:
        violations = Violations()
        violations.require(
            request,
            "event.studio_id",
            "event.table_id",
            "event.studio_sequence",
            "event.studio_time",
        )
        if not request.event.WhichOneof("payload"):
            violations.add("event.payload", "is required")
        if violations.items:
            raise InvalidArgument(violations.items, reason="INVALID_STUDIO_EVENT")
        event = request.event
        floor = self._runtime().floor
        loop = floor.loop(event.table_id)
        if loop is None:
            try:
                row = await self._runtime().store.table(event.table_id)
            except TableMissing:
                raise table_not_found(event.table_id) from None
            if row.config.result_source == game_pb2.RESULT_SOURCE_STUDIO:
                owner = await floor.owner(event.table_id)
                if owner is not None and not forwarded_call(context):
                    try:
                        return await floor.peers.apply(owner, request)
                    except grpc.aio.AioRpcError as error:  # the owner's answer, as it gave it
                        await context.abort(
                            error.code(), error.details() or "", error.trailing_metadata()
                        )
                raise Unavailable("TABLE_NOT_OWNED", "the table's owner is changing; retry")
        if not isinstance(loop, StudioLoop):
            raise PermissionDenied(
                "STUDIO_NOT_AUTHORIZED", f"table {event.table_id} is not fed by a studio"
            )
        return await loop.apply(event)

    async def GetRound(
        self, request: game_service_pb2.GetRoundRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.GetRoundResponse:
        violations = Violations()
        violations.require(request, "round_id")
        violations.raise_if_any()
        store = self._runtime().store
        try:
            row = await store.round(request.round_id)
        except RoundMissing:
            raise round_not_found(request.round_id) from None
        return game_service_pb2.GetRoundResponse(
            round=recall.full_round(
                row.record,
                await store.bets_of(request.round_id),
                await store.round_events(request.round_id),
            )
        )

    async def ListRounds(
        self, request: game_service_pb2.ListRoundsRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.ListRoundsResponse:
        violations = Violations()
        if bool(request.table_id) == bool(request.player_id):
            violations.add("table_id", "set exactly one of table_id and player_id")
        size = page_size(request.page_size, violations)
        before = recall.parse_page_token(request.page_token, violations)
        violations.raise_if_any()
        store = self._runtime().store
        rows = await store.rounds_page(
            table_id=request.table_id,
            player_id=request.player_id,
            start_us=recall.micros(request.start_time) if request.HasField("start_time") else None,
            end_us=recall.micros(request.end_time) if request.HasField("end_time") else None,
            before=before,
            limit=size + 1,
        )
        response = game_service_pb2.ListRoundsResponse()
        for row in rows[:size]:
            bets = await store.bets_of(row.record.round_id, request.player_id)
            events = await store.round_events(row.record.round_id) if request.player_id else []
            response.rounds.append(recall.summary(row.record, bets, events, request.player_id))
        if len(rows) > size:
            response.next_page_token = recall.page_token(rows[size - 1].record)
        return response


class TableAdminServicer(game_service_pb2_grpc.TableAdminServiceServicer):
    """Operator controls: create, suspend and resume tables, void rounds."""

    def __init__(self, runtime: Callable[[], Parts], clock: Clock | None = None) -> None:
        self._runtime = runtime
        self._clock = clock or utcnow

    async def CreateTable(
        self, request: game_service_pb2.CreateTableRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.CreateTableResponse:
        violations = Violations()
        check_mutation(request, violations)
        violations.require(request, "config")
        if request.HasField("config"):
            check_config(request.config, violations)
        violations.raise_if_any()
        parts = self._runtime()
        store = parts.store
        digest = request_hash(request)
        replayed = await Idempotent(store).replay("CreateTable", request.idempotency_key, digest)
        if replayed is not None:
            return game_service_pb2.CreateTableResponse.FromString(replayed)
        now = self._clock()
        response = game_service_pb2.CreateTableResponse(
            table_id=new_id(), config=request.config, created_at=timestamp(now)
        )
        answer = Answer(
            "CreateTable",
            request.idempotency_key,
            digest,
            lambda _: response.SerializeToString(deterministic=True),
        )
        try:
            await store.create_table(
                response.table_id, request.config, common_pb2.TABLE_STATUS_ACTIVE, now, answer
            )
        except IntegrityError:  # a concurrent retry with the same key won
            replayed = await Idempotent(store).replay(
                "CreateTable", request.idempotency_key, digest
            )
            if replayed is None:
                raise
            return game_service_pb2.CreateTableResponse.FromString(replayed)
        await parts.floor.sweep()  # start its first round now, not at the next sweep
        return response

    async def SuspendTable(
        self, request: game_service_pb2.SuspendTableRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.SuspendTableResponse:
        event = table_event_pb2.TableEvent(
            table_suspended=table_event_pb2.TableSuspended(
                reason=table_event_pb2.SUSPEND_REASON_OPERATOR, detail=request.reason
            )
        )
        violations = Violations()
        check_mutation(request, violations)
        violations.require(request, "table_id")
        violations.raise_if_any()
        voided = ""
        loop = self._runtime().floor.loop(request.table_id)
        if loop is not None:
            voided = await loop.suspend()

        def respond(stored: table_event_pb2.TableEvent | None) -> bytes:
            sequence = stored.sequence if stored else 0
            message = game_service_pb2.SuspendTableResponse(
                table_id=request.table_id, sequence=sequence, voided_round_id=voided
            )
            return message.SerializeToString(deterministic=True)

        answer = await self._change_status(
            "SuspendTable", request, common_pb2.TABLE_STATUS_SUSPENDED, event, respond
        )
        return game_service_pb2.SuspendTableResponse.FromString(answer)

    async def ResumeTable(
        self, request: game_service_pb2.ResumeTableRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.ResumeTableResponse:
        event = table_event_pb2.TableEvent(
            table_resumed=table_event_pb2.TableResumed(detail=request.reason)
        )

        def respond(stored: table_event_pb2.TableEvent | None) -> bytes:
            sequence = stored.sequence if stored else 0
            message = game_service_pb2.ResumeTableResponse(
                table_id=request.table_id, sequence=sequence
            )
            return message.SerializeToString(deterministic=True)

        answer = await self._change_status(
            "ResumeTable", request, common_pb2.TABLE_STATUS_ACTIVE, event, respond
        )
        loop = self._runtime().floor.loop(request.table_id)
        if loop is not None:
            loop.resume()
        return game_service_pb2.ResumeTableResponse.FromString(answer)

    async def VoidRound(
        self, request: game_service_pb2.VoidRoundRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.VoidRoundResponse:
        violations = Violations()
        check_mutation(request, violations)
        violations.require(request, "table_id", "round_id")
        violations.raise_if_any()
        parts = self._runtime()
        store = parts.store
        digest = request_hash(request)
        idempotent = Idempotent(store)
        replayed = await idempotent.replay("VoidRound", request.idempotency_key, digest)
        if replayed is not None:
            return game_service_pb2.VoidRoundResponse.FromString(replayed)
        try:
            row = await store.round(request.round_id)
        except RoundMissing:
            raise round_not_found(request.round_id) from None
        if row.record.table_id != request.table_id:
            raise round_not_found(request.round_id)
        if row.record.phase == common_pb2.ROUND_PHASE_SETTLED:
            raise FailedPrecondition(
                "ROUND_ALREADY_SETTLED",
                f"round {request.round_id} is settled",
                metadata={"round_id": request.round_id},
            )
        if row.record.phase == common_pb2.ROUND_PHASE_VOIDED:
            event = next(
                e for e in await store.round_events(request.round_id) if e.HasField("round_voided")
            )
        else:
            loop = parts.floor.loop(request.table_id)
            if loop is None:
                raise Unavailable(
                    "TABLE_NOT_OWNED", "another replica drives this table; retry the call"
                )
            voided = await loop.void(request.round_id, request.reason)
            if voided is None:  # it ended while we waited: settled, or voided by someone else
                return await self.VoidRound(request, context)
            event = voided
        refunded = [
            bet
            for bet in await store.bets_of(request.round_id)
            if bet.status == bet_pb2.BET_STATUS_ACCEPTED
        ]
        response = game_service_pb2.VoidRoundResponse(
            round_id=request.round_id,
            sequence=event.sequence,
            refunded_bet_count=event.round_voided.refunded_bet_count,
        )
        if refunded:
            response.total_refunded.CopyFrom(
                common_pb2.Money(
                    amount_minor=sum(bet.bet.stake.amount_minor for bet in refunded),
                    currency=refunded[0].bet.stake.currency,
                )
            )
        await store.remember(
            Answer(
                "VoidRound",
                request.idempotency_key,
                digest,
                lambda _: response.SerializeToString(deterministic=True),
            )
        )
        return response

    async def _change_status(
        self,
        operation: str,
        request: game_service_pb2.SuspendTableRequest | game_service_pb2.ResumeTableRequest,
        status: int,
        event: table_event_pb2.TableEvent,
        respond: Callable[[table_event_pb2.TableEvent | None], bytes],
    ) -> bytes:
        violations = Violations()
        check_mutation(request, violations)
        violations.require(request, "table_id")
        violations.raise_if_any()
        parts = self._runtime()
        store, log = parts.store, parts.log
        digest = request_hash(request)
        idempotent = Idempotent(store)
        replayed = await idempotent.replay(operation, request.idempotency_key, digest)
        if replayed is not None:
            return replayed
        event.table_id = request.table_id
        event.server_time.CopyFrom(timestamp(self._clock()))
        answer = Answer(operation, request.idempotency_key, digest, respond)
        async with log.lock(request.table_id):
            try:
                stored, response = await store.set_status_and_append(
                    request.table_id, status, event, answer
                )
            except TableMissing:
                raise table_not_found(request.table_id) from None
            except IntegrityError:  # a concurrent retry with the same key won
                replayed = await idempotent.replay(operation, request.idempotency_key, digest)
                if replayed is None:
                    raise
                return replayed
            if stored is not None:
                log.publish(stored)
        return response
