"""The shared error mapping, through a real grpc.aio server with the kit's interceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from casino_kit.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    details_of,
)
from casino_kit.interceptor import ServerInterceptor


async def _bad_input(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument([FieldViolation("amount.amount_minor", "must be positive")])


async def _closed(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise FailedPrecondition("BETTING_CLOSED", "betting closed at 12:00:00", metadata={"t": "1"})


async def _bug(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("secret internals /srv/app.py line 3")


async def _stream_bug(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"first"
    raise FailedPrecondition("TABLE_SUSPENDED", "table suspended")


@pytest.fixture
async def address() -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[ServerInterceptor()])
    handlers = {
        "BadInput": grpc.unary_unary_rpc_method_handler(_bad_input),
        "Closed": grpc.unary_unary_rpc_method_handler(_closed),
        "Bug": grpc.unary_unary_rpc_method_handler(_bug),
        "StreamBug": grpc.unary_stream_rpc_method_handler(_stream_bug),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.T", handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def _fail(address: str, method: str) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            if method.startswith("Stream"):
                async for _ in channel.unary_stream(f"/t.T/{method}")(b"", timeout=5):
                    pass
            else:
                await channel.unary_unary(f"/t.T/{method}")(b"", timeout=5)
        return failure.value


async def test_bad_input_is_invalid_argument_with_field_violations(address: str) -> None:
    details = details_of(await _fail(address, "BadInput"))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "INVALID_ARGUMENT" and details.domain == "t"
    assert details.violations == (FieldViolation("amount.amount_minor", "must be positive"),)


async def test_domain_error_carries_its_reason(address: str) -> None:
    details = details_of(await _fail(address, "Closed"))
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "BETTING_CLOSED" and details.metadata == {"t": "1"}


async def test_streaming_handler_errors_are_mapped_too(address: str) -> None:
    details = details_of(await _fail(address, "StreamBug"))
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "TABLE_SUSPENDED"


async def test_unexpected_exception_is_internal_without_internals(address: str) -> None:
    failure = await _fail(address, "Bug")
    assert failure.code() == grpc.StatusCode.INTERNAL
    assert failure.details() == "internal error"
    assert "secret" not in str(failure.debug_error_string())
