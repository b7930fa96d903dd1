"""One trace per round: the round's span in game_svc is the parent of its RNG draw and its
wallet settlement in their own processes, and every table event of the round carries it."""

from __future__ import annotations

import grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from casino_cli.platform import Platform
from tests.game_svc.rounds_helpers import Casino, Events, payload, rng_table
from tests.otlp import Collector, ReceivedSpan


def attribute(span: trace_pb2.Span, key: str) -> str:
    return next((a.value.string_value for a in span.attributes if a.key == key), "")


async def test_a_round_is_one_trace_across_game_rng_and_wallet(
    platform: Platform, collector: Collector
) -> None:
    async with (
        grpc.aio.insecure_channel(platform.addresses["game_svc"]) as game,
        grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet,
    ):
        casino = Casino(game, wallet)
        table_id = await casino.table(rng_table(name="traced"))
        events = Events(casino.game, table_id)
        try:
            settled = await events.wait_for(payload("round_settled"), timeout=30)
        finally:
            await events.close()
    round_id = settled.round_id

    def round_trace(spans: list[ReceivedSpan]) -> list[tuple[ReceivedSpan, set[str]]]:
        rounds = [
            s
            for s in spans
            if s.service == "game_svc"
            and s.span.name == "round"
            and attribute(s.span, "casino.round_id") == round_id
        ]
        found = []
        for root in rounds:
            names = {
                f"{s.service} {s.span.name}"
                for s in spans
                if s.span.trace_id == root.span.trace_id
                and s.span.kind == trace_pb2.Span.SPAN_KIND_SERVER
            }
            if {
                "rng_svc /casino.rng.v1.RngService/DrawOutcome",
                "wallet_svc /casino.wallet.v1.WalletService/SettleRound",
            } <= names:
                found.append((root, names))
        return found

    traces = await collector.wait_for(round_trace, timeout_s=15)
    assert traces, "no round trace with its draw and settlement"
    root, _ = traces[0]
    assert attribute(root.span, "casino.table_id") == table_id
    trace_id = root.span.trace_id.hex()
    for event in events.seen:
        if event.round_id == round_id:
            assert trace_id in event.trace_context["traceparent"]
