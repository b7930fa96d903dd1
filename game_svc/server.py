"""The gRPC adapter: Protobuf requests to domain and storage calls, results back to Protobuf.

What runs today: creating studio tables, reading them, suspending and resuming them, and
the table event stream (``Subscribe``) with resume by sequence. Rounds, bets, decisions,
studio events and recall answer UNIMPLEMENTED until the round loop is wired to the RNG,
wallet and ingest services.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.exc import IntegrityError

from casino.common.v1 import common_pb2, table_event_pb2, table_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino_kit.errors import AlreadyExists, NotFound
from casino_kit.validation import MAX_AMOUNT_MINOR, Violations
from game_svc import blackjack
from game_svc.bets import BetType
from game_svc.events import EventLog, FellBehind
from game_svc.ids import new_id
from game_svc.store import Answer, Store, TableMissing, TableRow

Clock = Callable[[], datetime]
GAME_OF_TYPE = {1: "roulette", 2: "baccarat", 3: "blackjack"}


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def table_not_found(table_id: str) -> NotFound:
    return NotFound("TABLE_NOT_FOUND", f"no table {table_id}", metadata={"table_id": table_id})


def table_message(row: TableRow) -> game_pb2.Table:
    config = row.config
    return game_pb2.Table(
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
    options = config.blackjack
    try:
        blackjack.Rules(
            decks=options.decks,
            dealer_hits_soft_17=options.dealer_hits_soft_17,
            double_after_split=options.double_after_split,
            max_hands_per_seat=options.max_hands_per_seat,
            infinite_mode=options.infinite_mode,
            seat_count=config.seat_count,
            decision_window_s=options.decision_window_seconds,
        )
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


class GameServicer(game_service_pb2_grpc.GameServiceServicer):
    """Tables and their event stream; rounds and bets come with the round loop."""

    def __init__(self, runtime: Callable[[], tuple[Store, EventLog]]) -> None:
        self._runtime = runtime

    async def GetTable(
        self, request: game_service_pb2.GetTableRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.GetTableResponse:
        violations = Violations()
        violations.require(request, "table_id")
        violations.raise_if_any()
        store, _ = self._runtime()
        try:
            row = await store.table(request.table_id)
        except TableMissing:
            raise table_not_found(request.table_id) from None
        return game_service_pb2.GetTableResponse(table=table_message(row))

    async def Subscribe(
        self, request: game_service_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[game_service_pb2.SubscribeResponse]:
        violations = Violations()
        violations.require(request, "table_id")
        violations.raise_if_any()
        _, log = self._runtime()
        try:
            async for event in log.subscribe(request.table_id, request.from_sequence):
                yield game_service_pb2.SubscribeResponse(event=event)
        except TableMissing:
            raise table_not_found(request.table_id) from None
        except FellBehind as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))


class TableAdminServicer(game_service_pb2_grpc.TableAdminServiceServicer):
    """Operator controls: create, suspend and resume tables (VoidRound needs rounds)."""

    def __init__(
        self, runtime: Callable[[], tuple[Store, EventLog]], clock: Clock | None = None
    ) -> None:
        self._runtime = runtime
        self._clock = clock or (lambda: datetime.now(UTC))

    async def CreateTable(
        self, request: game_service_pb2.CreateTableRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.CreateTableResponse:
        violations = Violations()
        check_mutation(request, violations)
        violations.require(request, "config")
        if request.HasField("config"):
            check_config(request.config, violations)
        violations.raise_if_any()
        if request.config.result_source == game_pb2.RESULT_SOURCE_RNG:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "RNG tables need the round loop, which is not wired yet; create a STUDIO table",
            )
        store, _ = self._runtime()
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
        return response

    async def SuspendTable(
        self, request: game_service_pb2.SuspendTableRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.SuspendTableResponse:
        event = table_event_pb2.TableEvent(
            table_suspended=table_event_pb2.TableSuspended(
                reason=table_event_pb2.SUSPEND_REASON_OPERATOR, detail=request.reason
            )
        )

        def respond(stored: table_event_pb2.TableEvent | None) -> bytes:
            sequence = stored.sequence if stored else 0
            message = game_service_pb2.SuspendTableResponse(
                table_id=request.table_id, sequence=sequence
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
        return game_service_pb2.ResumeTableResponse.FromString(answer)

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
        store, log = self._runtime()
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
