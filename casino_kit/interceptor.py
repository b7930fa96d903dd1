"""The server interceptor that maps domain errors to rich statuses and counts every RPC.

It wraps all four handler shapes. An unexpected exception is logged with its traceback and
answered INTERNAL with a generic message: a client never sees a traceback.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import metrics

from casino_kit.errors import DomainError, to_status
from casino_kit.logs import get_logger

log = get_logger(__name__)


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        meter = metrics.get_meter("casino_kit.rpc")
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Time to answer an RPC."
        )

    async def _fail(
        self, method: str, error: BaseException, context: grpc.aio.ServicerContext
    ) -> None:
        if isinstance(error, DomainError):
            # ErrorInfo.domain is the raising service's proto package, as the contract says.
            service = method.lstrip("/").split("/", 1)[0]
            status = to_status(error, service.rsplit(".", 1)[0])
            await context.abort(status.code, status.details, status.trailing_metadata)
        log.exception("unhandled error in rpc", exc_info=error)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    def _record(self, method: str, started: float, context: grpc.aio.ServicerContext) -> None:
        code = context.code() or grpc.StatusCode.OK
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._duration.record(elapsed_ms, {"rpc.method": method, "rpc.grpc.status_code": name})

    def _wrap_unary(self, method: str, behavior: Callable[..., Awaitable[Any]]) -> Any:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                return await behavior(request, context)
            except (DomainError, Exception) as error:
                if isinstance(error, grpc.aio.AbortError):
                    raise
                await self._fail(method, error, context)
            finally:
                self._record(method, started, context)

        return handler

    def _wrap_stream(self, method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Any:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async for response in behavior(request, context):
                    yield response
            except (DomainError, Exception) as error:
                if isinstance(error, grpc.aio.AbortError):
                    raise
                await self._fail(method, error, context)
            finally:
                self._record(method, started, context)

        return handler

    def _wrap_any(self, method: str, behavior: Callable[..., Any]) -> Any:
        """Streaming handlers are async generators, or coroutines that call ``context.write``."""
        if inspect.isasyncgenfunction(behavior):
            return self._wrap_stream(method, behavior)
        return self._wrap_unary(method, behavior)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(method, handler.stream_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_any(method, handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_any(method, handler.stream_stream),
            handler.request_deserializer,
            handler.response_serializer,
        )
