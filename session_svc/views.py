"""What one player sees of a table: filtered table events, pre-serialized once per event.

A table event goes to thousands of streams, so it is filtered and serialized once per
process, not once per stream: every player without a stake in it gets the same public bytes
(other players' ids cleared, RoundSettled without bets), the few players it names get their
own view. A stream only prefixes its sequence (``frame``): Protobuf fields may come in any
order, so ``sequence`` then the pre-serialized ``WatchTableResponse`` body parse as one
message. Pure functions and small state, no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from casino.common.v1 import table_event_pb2
from casino.session.v1 import session_pb2, session_service_pb2

TableEvent = table_event_pb2.TableEvent
RECENT_RESULTS = 20
_SEQUENCE_TAG = b"\x08"  # WatchTableResponse.sequence: field 1, varint


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_PREFIXES = [_SEQUENCE_TAG + varint(n) for n in range(1 << 14)]
"""The sequence field of the first 16,383 messages of every stream, made once."""


def frame(sequence: int, body: bytes) -> bytes:
    """A serialized WatchTableResponse: ``body`` (a response without sequence) numbered."""
    if sequence < len(_PREFIXES):
        return _PREFIXES[sequence] + body
    return _SEQUENCE_TAG + varint(sequence) + body


def body(response: session_service_pb2.WatchTableResponse) -> bytes:
    """A response's bytes without its sequence, ready for ``frame``."""
    response.ClearField("sequence")
    return response.SerializeToString()


def _named_players(event: TableEvent) -> set[str]:
    kind = event.WhichOneof("payload")
    if kind == "decision_requested":
        return {event.decision_requested.player_id} - {""}
    if kind == "decision_made":
        return {event.decision_made.player_id} - {""}
    if kind == "round_settled":
        return {bet.player_id for bet in event.round_settled.bets}
    if kind == "round_result" and event.round_result.HasField("blackjack"):
        return {hand.player_id for hand in event.round_result.blackjack.hands} - {""}
    return set()


def view(event: TableEvent, player_id: str) -> TableEvent:
    """``event`` as ``player_id`` may see it ("" for the public view): other players' ids
    cleared, RoundSettled with only the player's bets. Face-down cards carry no value already."""
    kind = event.WhichOneof("payload")
    if kind not in ("decision_requested", "decision_made", "round_settled", "round_result"):
        return event
    seen = TableEvent()
    seen.CopyFrom(event)
    if kind == "decision_requested" and seen.decision_requested.player_id != player_id:
        seen.decision_requested.player_id = ""
    elif kind == "decision_made" and seen.decision_made.player_id != player_id:
        seen.decision_made.player_id = ""
    elif kind == "round_settled":
        mine = [bet for bet in seen.round_settled.bets if bet.player_id == player_id]
        del seen.round_settled.bets[:]
        seen.round_settled.bets.extend(mine)
    elif kind == "round_result" and seen.round_result.HasField("blackjack"):
        for hand in seen.round_result.blackjack.hands:
            if hand.player_id != player_id:
                hand.player_id = ""
    return seen


def _event_body(event: TableEvent) -> bytes:
    return body(session_service_pb2.WatchTableResponse(table_event=event))


@dataclass(frozen=True)
class Item:
    """One entry of a player stream's queue: a table event (``sequence`` > 0) with its public
    and personal bodies, or a personal message (``sequence`` 0) for one player."""

    sequence: int
    public: bytes
    personal: dict[str, bytes] = field(default_factory=dict)

    def body_for(self, player_id: str) -> bytes:
        return self.personal.get(player_id, self.public)


def table_item(event: TableEvent) -> Item:
    personal = {p: _event_body(view(event, p)) for p in _named_players(event)}
    return Item(event.sequence, _event_body(view(event, "")), personal)


def personal_item(response: session_service_pb2.WatchTableResponse) -> Item:
    return Item(0, body(response))


def settlements(event: TableEvent) -> Iterator[tuple[str, table_event_pb2.BetSettlement]]:
    """The (player, bet) pairs a RoundSettled reports."""
    if event.WhichOneof("payload") == "round_settled":
        for bet in event.round_settled.bets:
            yield bet.player_id, bet


def bet_settled(
    settlement: table_event_pb2.BetSettlement, accepted: session_pb2.BetAccepted
) -> session_service_pb2.WatchTableResponse:
    return session_service_pb2.WatchTableResponse(
        bet_settled=session_pb2.BetSettled(
            bet_id=settlement.bet_id,
            client_bet_id=accepted.client_bet_id,
            round_id=accepted.round_id,
            spot=settlement.spot,
            stake=settlement.stake,
            payout=settlement.payout,
            outcome=settlement.outcome,
        )
    )


def bets_refunded(
    voided: table_event_pb2.RoundVoided, accepted: Iterable[session_pb2.BetAccepted]
) -> list[session_service_pb2.WatchTableResponse]:
    return [
        session_service_pb2.WatchTableResponse(
            bet_refunded=session_pb2.BetRefunded(
                bet_id=bet.bet_id,
                client_bet_id=bet.client_bet_id,
                round_id=bet.round_id,
                amount=bet.stake,
                reason=voided.reason,
            )
        )
        for bet in accepted
    ]


class TableState:
    """What a snapshot needs that only the event stream knows: the current round's events
    and the latest results."""

    def __init__(self) -> None:
        self.last_sequence = 0
        self.round_id = ""
        self.round_events: list[TableEvent] = []
        self.recent_results: deque[table_event_pb2.RoundResult] = deque(maxlen=RECENT_RESULTS)

    def apply(self, event: TableEvent) -> None:
        self.last_sequence = event.sequence
        kind = event.WhichOneof("payload")
        if kind == "round_opened":
            self.round_id, self.round_events = event.round_id, []
        if event.round_id and event.round_id == self.round_id:
            self.round_events.append(event)
        if kind == "round_result":
            self.recent_results.appendleft(event.round_result)
        ended = kind == "round_voided" or (
            kind == "round_settled" and event.round_settled.part >= event.round_settled.part_count
        )
        if ended and event.round_id == self.round_id:
            self.round_id, self.round_events = "", []

    def snapshot_events(self, player_id: str) -> list[TableEvent]:
        return [view(event, player_id) for event in self.round_events]
