"""A studio table: the studio opens rounds and reads results; the platform keeps the rest.

The studio's RoundStart opens a round; betting closes by the server clock (or at the first
card or wheel reading, whichever comes first: no bet is taken once the result can be seen);
the studio's RoundResult must carry the round hash of what was applied, and then the round
is settled like any other.

Each (table, studio sequence) is consumed once, in the same transaction as its effect, with
the answer it got: a repeat of the same event gets that answer again (DUPLICATE). A skipped
sequence, a sequence replayed with another payload, or a round hash that does not match
suspends the table and voids its open round with full refunds (invariant 7).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from casino.common.v1 import common_pb2, table_event_pb2
from casino.game.v1 import game_pb2, game_service_pb2
from casino.ingest.v1 import ingest_pb2
from casino_kit.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from game_svc import baccarat
from game_svc.cards import Card
from game_svc.clock import timestamp
from game_svc.ids import new_id
from game_svc.outcomes import Drawn, Game
from game_svc.results import baccarat_result, card_of, roulette_result
from game_svc.round_hash import DealtCard, Target
from game_svc.round_loop import LiveRound, Mark, TableLoop
from game_svc.rounds import Phase
from game_svc.store import Answer, StudioMark

APPLIED = game_pb2.APPLY_STATUS_APPLIED


def invalid(why: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation("event", why)], reason="INVALID_STUDIO_EVENT")


def digest_of(event: ingest_pb2.StudioEvent) -> str:
    """The payload's fingerprint; trace context is transport, not payload."""
    bare = ingest_pb2.StudioEvent()
    bare.CopyFrom(event)
    bare.ClearField("trace_context")
    return hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()


def refusal(error: DomainError) -> bytes:
    return json.dumps(
        {"kind": type(error).__name__, "reason": error.reason, "message": error.message}
    ).encode()


def replayed(answer: bytes) -> game_service_pb2.ApplyStudioEventResponse:
    """A consumed sequence's first answer, again: the response marked DUPLICATE, or the
    same refusal raised."""
    if answer.startswith(b"{"):
        first = json.loads(answer)
        if first["kind"] == "InvalidArgument":
            raise invalid(first["message"])
        raise FailedPrecondition(first["reason"], first["message"])
    response = game_service_pb2.ApplyStudioEventResponse.FromString(answer)
    response.status = game_pb2.APPLY_STATUS_DUPLICATE
    return response


class StudioLoop(TableLoop):
    """Drives a studio table while this replica owns it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dealt: list[DealtCard] = []
        self.pocket: int | None = None

    async def play(self) -> None:
        """Close the open round's betting when its window ends by server time."""
        live = self.live
        if live is None or live.round.phase is not Phase.OPEN:
            await self._sleep(0.5)
            return
        await self._sleep_until(live.round.closes_at)
        async with self._turn:
            if self.live is live and live.round.phase is Phase.OPEN:
                if self.clock() >= live.round.closes_at:
                    await self._close(live)

    async def apply(
        self, event: ingest_pb2.StudioEvent
    ) -> game_service_pb2.ApplyStudioEventResponse:
        if event.studio_id != self.config.studio_id:
            raise PermissionDenied(
                "STUDIO_NOT_AUTHORIZED", f"studio {event.studio_id} does not feed this table"
            )
        digest = digest_of(event)
        sequence = event.studio_sequence
        async with self._turn:
            known = await self.store.studio_mark(self.table_id, sequence)
            if known is not None:
                if known.digest == digest:
                    return replayed(known.answer)
                await self._fault(
                    table_event_pb2.SUSPEND_REASON_SEQUENCE_CONFLICT,
                    table_event_pb2.VOID_REASON_SEQUENCE_CONFLICT,
                    f"studio sequence {sequence} was sent again with another payload",
                )
                raise FailedPrecondition(
                    "SEQUENCE_CONFLICT", f"sequence {sequence} was applied with another payload"
                )
            expected = await self.store.last_studio_sequence(self.table_id) + 1
            if sequence != expected:
                error = FailedPrecondition(
                    "SEQUENCE_GAP" if sequence > expected else "SEQUENCE_CONFLICT",
                    f"expected studio sequence {expected}, got {sequence}",
                    metadata={"resume_from": str(max(expected, sequence + 1))},
                )
                mark = self._mark(sequence, digest, refusal(error))
                gap = sequence > expected
                await self._fault(
                    table_event_pb2.SUSPEND_REASON_SEQUENCE_GAP
                    if gap
                    else table_event_pb2.SUSPEND_REASON_SEQUENCE_CONFLICT,
                    table_event_pb2.VOID_REASON_SEQUENCE_GAP
                    if gap
                    else table_event_pb2.VOID_REASON_SEQUENCE_CONFLICT,
                    error.message,
                    mark if gap else None,
                )
                raise error
            try:
                return await self._dispatch(event, digest)
            except (InvalidArgument, FailedPrecondition) as error:
                if error.reason not in ("ROUND_HASH_MISMATCH",):
                    await self.store.mark_studio(
                        StudioMark(self.table_id, sequence, digest, refusal(error))
                    )
                raise

    def _mark(self, sequence: int, digest: str, answer: bytes) -> Mark:
        return lambda _: StudioMark(self.table_id, sequence, digest, answer)

    def _applied(self, sequence: int, digest: str, round_id: str) -> Mark:
        def mark(stored: list[table_event_pb2.TableEvent]) -> StudioMark:
            produced = next((e for e in stored if e.studio_sequence == sequence), stored[-1])
            response = game_service_pb2.ApplyStudioEventResponse(
                status=APPLIED, round_id=round_id, table_sequence=produced.sequence
            )
            return StudioMark(
                self.table_id, sequence, digest, response.SerializeToString(deterministic=True)
            )

        return mark

    def _stamped(self, event: ingest_pb2.StudioEvent, round_id: str) -> table_event_pb2.TableEvent:
        return table_event_pb2.TableEvent(
            table_id=self.table_id,
            round_id=round_id,
            server_time=timestamp(self.clock()),
            studio_sequence=event.studio_sequence,
            media_timestamp_us=event.media_timestamp_us,
        )

    async def _dispatch(
        self, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        kind = event.WhichOneof("payload")
        sequence = event.studio_sequence
        if kind == "table_suspended":
            await self._suspend_for(event, digest)
            return game_service_pb2.ApplyStudioEventResponse(status=APPLIED)
        if kind == "table_resumed":
            await self._resume_for(event, digest)
            return game_service_pb2.ApplyStudioEventResponse(status=APPLIED)
        if self.suspended:
            raise FailedPrecondition("TABLE_SUSPENDED", "the table is suspended")
        if kind == "round_start":
            return await self._round_start(event, digest)
        live = self.live
        if live is None or live.record.studio_round_id != event.studio_round_id:
            raise invalid(f"no open round {event.studio_round_id!r} at this table")
        round_id = live.record.round_id
        if kind == "round_voided":
            await self._end_rounds(
                table_event_pb2.VOID_REASON_STUDIO,
                event.round_voided.detail or "voided by the studio",
                self._applied(sequence, digest, round_id),
            )
            return await self._answer(sequence)
        if live.round.phase is Phase.OPEN:
            await self._close(live)  # the result can be seen from now on: no more bets
        if live.round.phase is not Phase.BETS_CLOSED:
            raise invalid(f"round {event.studio_round_id!r} already has its result")
        if kind == "wheel_result":
            return await self._wheel(live, event, digest)
        if kind == "card_dealt":
            return await self._card(live, event, digest)
        if kind == "card_revealed":
            return await self._reveal(live, event, digest)
        if kind == "round_result":
            return await self._result(live, event, digest)
        raise invalid(f"{kind or 'an empty payload'} is not applied at {self.game.name} tables")

    async def _answer(self, sequence: int) -> game_service_pb2.ApplyStudioEventResponse:
        mark = await self.store.studio_mark(self.table_id, sequence)
        assert mark is not None
        return game_service_pb2.ApplyStudioEventResponse.FromString(mark.answer)

    async def _round_start(
        self, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        if not event.studio_round_id:
            raise invalid("round_start needs a studio_round_id")
        if event.round_start.game_type != self.config.game_type:
            raise invalid("round_start names another game than the table's")
        if await self.store.unfinished_rounds(self.table_id):
            raise invalid("the previous round is not finished")
        round_id = new_id()
        record = game_pb2.Round(
            round_id=round_id,
            studio_id=event.studio_id,
            studio_round_id=event.studio_round_id,
        )
        self.dealt, self.pocket = [], None
        await self._start(
            record,
            self._stamped(event, round_id),
            self._applied(event.studio_sequence, digest, round_id),
        )
        self._wake.set()
        return await self._answer(event.studio_sequence)

    async def _publish(
        self, live: LiveRound, event: table_event_pb2.TableEvent, sequence: int, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        await self._save(
            live.record,
            live.round.closes_at,
            [event],
            self._applied(sequence, digest, live.record.round_id),
        )
        return await self._answer(sequence)

    async def _wheel(
        self, live: LiveRound, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        pocket = event.wheel_result.pocket
        if self.game is not Game.ROULETTE or self.pocket is not None or not 0 <= pocket <= 36:
            raise invalid("a wheel reading needs a roulette round without one, pocket 0 to 36")
        self.pocket = pocket
        stamped = self._stamped(event, live.record.round_id)
        stamped.wheel_result.CopyFrom(event.wheel_result)
        return await self._publish(live, stamped, event.studio_sequence, digest)

    async def _card(
        self, live: LiveRound, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        dealt = event.card_dealt
        if self.game is not Game.BACCARAT or dealt.face_down:
            raise invalid("face-up cards are dealt at baccarat tables only")
        try:
            card = card_of(dealt.card)
        except ValueError as error:
            raise invalid(str(error)) from None
        targets = {
            table_event_pb2.CARD_TARGET_PLAYER: Target.PLAYER,
            table_event_pb2.CARD_TARGET_BANKER: Target.BANKER,
        }
        player, banker = self._hands()
        due = baccarat.next_card(player, banker)
        wanted = (
            None
            if due is None
            else (Target.PLAYER if due is baccarat.Side.PLAYER else Target.BANKER)
        )
        if targets.get(dealt.target) is not wanted or dealt.deal_index != len(self.dealt) + 1:
            raise invalid("the card is not the one the third-card rules call for next")
        self.dealt.append(DealtCard(dealt.deal_index, targets[dealt.target], card))
        stamped = self._stamped(event, live.record.round_id)
        stamped.card_dealt.CopyFrom(dealt)
        return await self._publish(live, stamped, event.studio_sequence, digest)

    async def _reveal(
        self, live: LiveRound, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        raise invalid("face-down cards are turned at blackjack tables only")

    def _hands(self) -> tuple[list[Card], list[Card]]:
        player = [d.card for d in self.dealt if d.target is Target.PLAYER]
        banker = [d.card for d in self.dealt if d.target is Target.BANKER]
        return player, banker

    async def _result(
        self, live: LiveRound, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        if self.game is Game.ROULETTE and self.pocket is not None:
            drawn = Drawn(self.game, pocket=self.pocket)
        else:
            try:
                player, banker = self._hands()
                drawn = Drawn(
                    self.game,
                    coup=baccarat.Coup(tuple(player), tuple(banker)),
                    dealt=tuple(self.dealt),
                )
            except (ValueError, IndexError):
                raise invalid("the round's result is not complete") from None
        expected = drawn.round_hash(event.studio_round_id)
        await self._check_hash(event, digest, expected)
        result = table_event_pb2.RoundResult(round_hash=expected)
        if drawn.pocket is not None:
            result.roulette.CopyFrom(roulette_result(drawn.pocket))
        elif drawn.coup is not None:
            result.baccarat.CopyFrom(baccarat_result(drawn.coup))
        live.round.record_result(self.clock())
        live.record.phase = common_pb2.ROUND_PHASE_RESULT
        live.record.result.CopyFrom(result)
        stamped = self._stamped(event, live.record.round_id)
        stamped.round_result.CopyFrom(result)
        answer = await self._publish(live, stamped, event.studio_sequence, digest)
        await self._settle(live.record, live.round.closes_at, live.round.accepted, drawn)
        live.round.settle(self.clock())
        self.live = None
        return answer

    async def _check_hash(self, event: ingest_pb2.StudioEvent, digest: str, expected: str) -> None:
        """A studio result whose round hash is not the applied events' suspends the table
        and voids the round (invariant 7)."""
        if event.round_result.round_hash == expected:
            return
        detail = f"round hash {event.round_result.round_hash!r} does not match the events applied"
        await self._fault(
            table_event_pb2.SUSPEND_REASON_ROUND_HASH_MISMATCH,
            table_event_pb2.VOID_REASON_ROUND_HASH_MISMATCH,
            detail,
            self._mark(
                event.studio_sequence,
                digest,
                refusal(FailedPrecondition("ROUND_HASH_MISMATCH", detail)),
            ),
        )
        raise FailedPrecondition("ROUND_HASH_MISMATCH", detail)

    async def _fault(self, suspend: int, void: int, detail: str, mark: Mark | None = None) -> None:
        """Suspend the table for a studio fault and void its open round (under the turn)."""
        self.suspended = True
        voided = await self._end_rounds(void, detail, mark)
        if mark is not None and not voided:
            await self.store.mark_studio(mark([]))
        await self._set_status(
            common_pb2.TABLE_STATUS_SUSPENDED,
            table_event_pb2.TableEvent(
                table_suspended=table_event_pb2.TableSuspended(reason=suspend, detail=detail)  # type: ignore[arg-type]
            ),
            f"fault:{new_id()}",
        )

    async def _suspend_for(self, event: ingest_pb2.StudioEvent, digest: str) -> None:
        self.suspended = True
        await self._end_rounds(table_event_pb2.VOID_REASON_STUDIO, "the studio suspended the table")
        stamped = self._stamped(event, "")
        stamped.table_suspended.CopyFrom(event.table_suspended)
        stamped.table_suspended.reason = table_event_pb2.SUSPEND_REASON_STUDIO
        await self._studio_status(common_pb2.TABLE_STATUS_SUSPENDED, stamped, digest)

    async def _resume_for(self, event: ingest_pb2.StudioEvent, digest: str) -> None:
        if self.suspended_by_operator:
            raise FailedPrecondition("TABLE_SUSPENDED", "an operator suspended the table")
        stamped = self._stamped(event, "")
        stamped.table_resumed.CopyFrom(event.table_resumed)
        await self._studio_status(common_pb2.TABLE_STATUS_ACTIVE, stamped, digest)
        self.resume()

    async def _studio_status(
        self, status: int, event: table_event_pb2.TableEvent, digest: str
    ) -> None:
        """A status change the studio asked for, then its sequence consumed (both are
        idempotent, so a crash between them only makes the retry apply it again)."""
        sequence = event.studio_sequence
        await self._set_status(status, event, f"studio:{sequence}")
        applied = game_service_pb2.ApplyStudioEventResponse(status=APPLIED)
        await self.store.mark_studio(
            StudioMark(self.table_id, sequence, digest, applied.SerializeToString())
        )

    async def _set_status(self, status: int, event: table_event_pb2.TableEvent, key: str) -> None:
        event.table_id = self.table_id
        if not event.HasField("server_time"):
            event.server_time.CopyFrom(timestamp(self.clock()))
        answer = Answer("StudioStatus", key, key, lambda _: b"")
        async with self.log.lock(self.table_id):
            stored, _ = await self.store.set_status_and_append(self.table_id, status, event, answer)
            if stored is not None:
                self.log.publish(stored)
