"""A traced server stream that its client cancels unwinds in its own call: the handler's
clean-up runs and the trace context is detached where it was attached, not in a
garbage-collector task ("Failed to detach context")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from casino_kit.interceptor import ServerInterceptor

CHUNK = b"x" * (1 << 20)


async def test_a_cancelled_stream_cleans_up_in_its_own_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cleaned = asyncio.Event()
    sent = 0

    async def endless(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        nonlocal sent
        try:
            while True:
                sent += 1
                yield CHUNK  # the client stops reading: a send soon waits on flow control
        finally:
            cleaned.set()

    server = grpc.aio.server(interceptors=[ServerInterceptor()])
    handler = grpc.unary_stream_rpc_method_handler(endless)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Streams", {"Endless": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    caplog.set_level(logging.ERROR, logger="opentelemetry.context")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream("/test.Streams/Endless")(b"")
            await call.read()
            # The server runs ahead of the client until flow control blocks its send; how far
            # depends on the window gRPC has grown to, so wait until it stops advancing.
            before = 0
            while sent < 2 or sent != before:
                before = sent
                await asyncio.sleep(0.1)
            call.cancel()
            await asyncio.wait_for(cleaned.wait(), 10)
        await asyncio.sleep(0.1)  # a collector task, if any, would log by now
    finally:
        await server.stop(None)
    assert cleaned.is_set()
    assert not [r for r in caplog.records if "detach" in r.getMessage()]
