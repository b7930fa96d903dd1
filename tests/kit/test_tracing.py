"""One trace spans two processes: game_svc's client span and rng_svc's server span."""

from __future__ import annotations

from opentelemetry.proto.trace.v1 import trace_pb2

from casino_cli.platform import Platform
from tests.otlp import Collector, ReceivedSpan

CHECK = "/grpc.health.v1.Health/Check"


async def test_client_and_server_spans_share_a_trace(
    platform: Platform, collector: Collector
) -> None:
    def linked(spans: list[ReceivedSpan]) -> list[tuple[ReceivedSpan, ReceivedSpan]]:
        clients = [
            s
            for s in spans
            if s.service == "game_svc"
            and s.span.kind == trace_pb2.Span.SPAN_KIND_CLIENT
            and s.span.name == CHECK
        ]
        servers = [
            s
            for s in spans
            if s.service == "rng_svc" and s.span.kind == trace_pb2.Span.SPAN_KIND_SERVER
        ]
        return [
            (c, s)
            for c in clients
            for s in servers
            if s.span.trace_id == c.span.trace_id and s.span.parent_span_id == c.span.span_id
        ]

    pairs = await collector.wait_for(linked)
    assert pairs, f"no linked spans among {len(collector.spans)} received"
    client, server = pairs[0]
    assert server.span.name == CHECK
    assert len(client.span.trace_id) == 16 and any(client.span.trace_id)
