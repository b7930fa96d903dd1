"""A minimal OTLP/gRPC collector in the test process: it keeps every span it receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

T = TypeVar("T")


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    span: trace_pb2.Span


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, spans: list[ReceivedSpan]) -> None:
        self.spans = spans

    async def Export(  # noqa: N802 - gRPC method name
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in resource_spans.scope_spans:
                self.spans += [ReceivedSpan(service, span) for span in scope.spans]
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    async def Export(  # noqa: N802 - gRPC method name
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Collector:
    def __init__(self, port: int) -> None:
        self.port = port
        self.spans: list[ReceivedSpan] = []

    def exporter_env(self) -> dict[str, str]:
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }

    async def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], list[T]], timeout_s: float = 10.0
    ) -> list[T]:
        """Wait until ``predicate(spans)`` returns a non-empty answer."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = predicate(self.spans)
            if found or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.1)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[Collector]:
        server = grpc.aio.server()
        port = server.add_insecure_port("127.0.0.1:0")
        collector = cls(port)
        # opentelemetry-proto's generated gRPC modules carry no type annotations
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _Traces(collector.spans), server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _Metrics(), server
        )
        await server.start()
        try:
            yield collector
        finally:
            await server.stop(None)
