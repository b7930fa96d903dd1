"""Metrics on the Prometheus endpoint and JSON logs that carry the trace id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from casino_cli.platform import Platform, free_port
from casino_kit.logs import configure_logging, get_logger


async def test_rpc_metrics_are_served_for_prometheus(tmp_path: Path) -> None:
    metrics_port = free_port()
    platform = Platform(
        data_dir=tmp_path,
        packages=("rng_svc",),
        free_ports=True,
        env={"CASINO_METRICS_PORT": str(metrics_port)},
    )
    await platform.start()
    try:
        async with grpc.aio.insecure_channel(platform.addresses["rng_svc"]) as channel:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    finally:
        await platform.stop()
    lines = [line for line in text.decode().splitlines() if line.startswith("rpc_server_duration")]
    assert any('rpc_method="/grpc.health.v1.Health/Check"' in line for line in lines), lines[:5]
    assert any('rpc_grpc_status_code="OK"' in line for line in lines)


def test_log_lines_are_json_with_the_trace_id() -> None:
    stream = io.StringIO()
    configure_logging("test_svc")
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        get_logger("test").info("stake accepted", bet_id="b-1")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "stake accepted" and line["bet_id"] == "b-1"
    assert line["service"] == "test_svc" and line["level"] == "info"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
