"""OpenTelemetry tracing and metrics, set up once per process.

Spans go through a BatchSpanProcessor to OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
(the exporter reads the standard OTEL_* variables itself). Metrics are served for Prometheus
on ``metrics_port`` and pushed by OTLP when the endpoint is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF


@dataclass
class Telemetry:
    """The process's providers; ``shutdown`` flushes what is still buffered."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    _done: bool = field(default=False, init=False)

    def shutdown(self) -> None:
        if self._done:
            return
        self._done = True
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(
    service: str, metrics_port: int | None = None, exporter: SpanExporter | None = None
) -> Telemetry:
    """Install global tracer and meter providers for ``service``."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    otlp = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if exporter is None and otlp:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    # With nowhere to send spans, record none: trace ids still propagate and reach the logs,
    # but no call pays for attributes and events nobody will read. Otherwise the standard
    # OTEL_TRACES_SAMPLER variables choose.
    sampler = None if exporter is not None else ALWAYS_OFF
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    if exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)

    readers: list[MetricReader] = []
    if metrics_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
        readers.append(PrometheusMetricReader())
    if otlp:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider)


def client_tracing() -> list[grpc.aio.ClientInterceptor]:
    """Client spans for unary and streaming calls, with trace context sent in metadata."""
    return list(aio_client_interceptors())  # type: ignore[no-untyped-call]


def inject_context() -> dict[str, str]:
    """The current trace context as a W3C ``traceparent`` map, to carry inside stream messages."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> Context:
    """The trace context a message carried, to parent the spans that handle it."""
    return propagate.extract(dict(carrier))
