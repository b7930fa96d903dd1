"""Game recall: a round's full record for operators and regulators, and listing pages.

Settlements are not copied onto bet rows: the RoundSettled events are the record of what
each bet paid (one write per round, however many bets), and recall reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_pb2
from casino_kit.validation import Violations


def micros(stamp: Timestamp) -> int:
    return stamp.seconds * 1_000_000 + stamp.nanos // 1000


def settlements(
    events: Iterable[table_event_pb2.TableEvent],
) -> dict[str, table_event_pb2.BetSettlement]:
    return {
        bet.bet_id: bet
        for event in events
        if event.HasField("round_settled")
        for bet in event.round_settled.bets
    }


def full_round(
    record: game_pb2.Round,
    bets: Sequence[game_pb2.BetRecord],
    events: Sequence[table_event_pb2.TableEvent],
) -> game_pb2.Round:
    """The stored record with every bet (and how it ended) and every event."""
    full = game_pb2.Round()
    full.CopyFrom(record)
    del full.bets[:]  # a blackjack record keeps its settlements; the bets table is complete
    paid = settlements(events)
    voided = record.phase == common_pb2.ROUND_PHASE_VOIDED
    for bet in bets:
        entry = full.bets.add()
        entry.CopyFrom(bet)
        if bet.status != bet_pb2.BET_STATUS_ACCEPTED:
            continue
        settled = paid.get(bet.bet.bet_id)
        if settled is not None:
            entry.outcome = settled.outcome
            entry.payout.CopyFrom(settled.payout)
        elif voided:
            entry.refunded = True
    full.events.extend(events)
    return full


def summary(
    record: game_pb2.Round,
    bets: Sequence[game_pb2.BetRecord],
    events: Sequence[table_event_pb2.TableEvent],
    player_id: str,
) -> game_pb2.RoundSummary:
    """One listing line; with ``player_id``, the counts and sums are the player's own."""
    line = game_pb2.RoundSummary(
        round_id=record.round_id,
        table_id=record.table_id,
        game_type=record.game_type,
        phase=record.phase,
        opened_at=record.opened_at,
    )
    if record.HasField("closed_at"):
        line.closed_at.CopyFrom(record.closed_at)
    if record.HasField("result"):
        line.result.CopyFrom(record.result)
    currency = record.total_stake.currency
    if not player_id:
        line.bet_count = sum(1 for bet in bets if bet.status == bet_pb2.BET_STATUS_ACCEPTED)
        line.total_stake.CopyFrom(record.total_stake)
        if record.HasField("total_payout"):
            line.total_payout.CopyFrom(record.total_payout)
        return line
    mine = [bet for bet in bets if bet.status == bet_pb2.BET_STATUS_ACCEPTED]
    line.bet_count = len(mine)
    line.total_stake.CopyFrom(
        common_pb2.Money(
            amount_minor=sum(bet.bet.stake.amount_minor for bet in mine), currency=currency
        )
    )
    if record.phase == common_pb2.ROUND_PHASE_SETTLED:
        paid = settlements(events)
        line.total_payout.CopyFrom(
            common_pb2.Money(
                amount_minor=sum(
                    paid[bet.bet.bet_id].payout.amount_minor
                    for bet in mine
                    if bet.bet.bet_id in paid
                ),
                currency=currency,
            )
        )
    return line


def page_token(record: game_pb2.Round) -> str:
    return f"{micros(record.opened_at)}:{record.round_id}"


def parse_page_token(token: str, violations: Violations) -> tuple[int, str] | None:
    if not token:
        return None
    opened, _, round_id = token.partition(":")
    if not opened.isdigit() or not round_id:
        violations.add("page_token", "is not a token this service returned")
        return None
    return int(opened), round_id
