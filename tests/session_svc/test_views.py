"""What a player sees of table events: other players' data removed, bytes built once."""

from __future__ import annotations

from casino.common.v1 import common_pb2, table_event_pb2
from casino.session.v1 import session_pb2
from casino.session.v1 import session_service_pb2 as pb
from session_svc import views
from session_svc.views import TableEvent, TableState


def settled(*players: str, part: int = 1, parts: int = 1) -> TableEvent:
    eur = common_pb2.Money(amount_minor=100, currency="EUR")
    return TableEvent(
        table_id="t",
        round_id="r1",
        sequence=7,
        round_settled=table_event_pb2.RoundSettled(
            bets=[
                table_event_pb2.BetSettlement(bet_id=f"bet-{i}", player_id=p, stake=eur, payout=eur)
                for i, p in enumerate(players)
            ],
            part=part,
            part_count=parts,
        ),
    )


def parse(frame: bytes) -> pb.WatchTableResponse:
    return pb.WatchTableResponse.FromString(frame)


def test_a_frame_is_the_response_with_its_stream_sequence() -> None:
    item = views.table_item(TableEvent(table_id="t", sequence=41))
    for sequence in (1, 127, 128, 300_000):
        message = parse(views.frame(sequence, item.body_for("anyone")))
        assert message.sequence == sequence
        assert message.table_event.sequence == 41


def test_round_settled_lists_only_the_players_own_bets() -> None:
    item = views.table_item(settled("alice", "bob", "alice"))
    alice = parse(views.frame(1, item.body_for("alice"))).table_event.round_settled
    assert [b.bet_id for b in alice.bets] == ["bet-0", "bet-2"]
    assert {b.player_id for b in alice.bets} == {"alice"}
    watcher = parse(views.frame(1, item.body_for("carol"))).table_event.round_settled
    assert list(watcher.bets) == []
    assert watcher.part_count == 1


def test_decisions_name_only_the_player_deciding() -> None:
    event = TableEvent(
        sequence=3,
        decision_requested=table_event_pb2.DecisionRequested(seat=2, hand=1, player_id="alice"),
    )
    item = views.table_item(event)
    assert parse(item.body_for("alice")).table_event.decision_requested.player_id == "alice"
    assert parse(item.body_for("bob")).table_event.decision_requested.player_id == ""
    assert set(item.personal) == {"alice"}


def test_events_naming_nobody_share_one_body() -> None:
    item = views.table_item(
        TableEvent(sequence=2, wheel_result=table_event_pb2.WheelResult(pocket=17))
    )
    assert item.personal == {}
    assert item.body_for("alice") is item.body_for("bob")


def test_settlements_and_refunds_become_the_players_messages() -> None:
    event = settled("alice")
    accepted = session_pb2.BetAccepted(bet_id="bet-0", client_bet_id="c-0", round_id="r1")
    ((player, settlement),) = list(views.settlements(event))
    message = views.bet_settled(settlement, accepted)
    assert player == "alice"
    assert (message.bet_settled.client_bet_id, message.bet_settled.round_id) == ("c-0", "r1")
    voided = table_event_pb2.RoundVoided(reason=table_event_pb2.VOID_REASON_OPERATOR)
    (refund,) = views.bets_refunded(voided, [accepted])
    assert refund.bet_refunded.client_bet_id == "c-0"
    assert refund.bet_refunded.reason == table_event_pb2.VOID_REASON_OPERATOR


def test_table_state_keeps_the_current_round_and_recent_results() -> None:
    state = TableState()
    opened = TableEvent(
        round_id="r1",
        sequence=1,
        round_opened=table_event_pb2.RoundOpened(game_type=common_pb2.GAME_TYPE_ROULETTE),
    )
    result = TableEvent(
        round_id="r1",
        sequence=2,
        round_result=table_event_pb2.RoundResult(roulette=table_event_pb2.RouletteResult(pocket=5)),
    )
    for event in (opened, result):
        state.apply(event)
    assert [e.sequence for e in state.snapshot_events("alice")] == [1, 2]
    state.apply(settled("alice", part=1, parts=2))
    assert state.round_id == "r1"
    final = settled("alice", part=2, parts=2)
    final.sequence = 8
    state.apply(final)
    assert (state.round_id, state.round_events, state.last_sequence) == ("", [], 8)
    assert [r.roulette.pocket for r in state.recent_results] == [5]
