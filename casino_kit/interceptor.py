"""The one server interceptor: a span per RPC, the duration metric, rich error statuses.

Every RPC gets a server span that continues the caller's trace (W3C ``traceparent`` in the
metadata) and is current while the handler runs, so the handler's own calls and log lines
carry the trace. Domain errors become rich statuses; an unexpected exception is logged with
its traceback and answered INTERNAL with a generic message: a client never sees a traceback.

One interceptor, not the OpenTelemetry library's beside ours: grpc.aio runs each interceptor
as a coroutine on every call, and the library builds a new handler and a context wrapper per
call; here the wrapped handler is built once per method. A wallet process answering single
stakes at 256 clients went from 546 to 645 calls/s with this one instead of the two.

Server streams are coroutines that write each response with ``context.write`` and close the
handler's generator themselves: a client that cancels while a send waits unwinds everything,
the trace context included, in the call's own task (an async generator left open would be
closed later by the garbage collector, from another task, where detaching the context fails).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Token
from typing import Any, NamedTuple

import grpc
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from casino_kit.errors import DomainError, to_status
from casino_kit.logs import get_logger

log = get_logger(__name__)

UNTRACED = frozenset({"/grpc.health.v1.Health/Watch"})
"""Calls without a span: a probe's watch lasts as long as the pod and says nothing."""

Behavior = Callable[..., Any]


class _Call(NamedTuple):
    started: float
    span: Span
    token: Token[Context] | None
    """The attached trace context, to detach when the call ends."""


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self._tracer = tracer or trace.get_tracer(__name__)
        meter = metrics.get_meter("casino_kit.rpc")
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Time to answer an RPC."
        )
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        shapes = (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler, False),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler, False),
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler, True),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler, True),
        )
        behavior, make, streams = next(s for s in shapes if s[0] is not None)
        if streams and inspect.isasyncgenfunction(behavior):
            wrapped = self._stream(method, behavior)
        else:  # a response, or a stream written with ``context.write``
            wrapped = self._call(method, behavior)
        return make(wrapped, handler.request_deserializer, handler.response_serializer)

    def _call(self, method: str, behavior: Behavior) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            opened = self._open(method, context)
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await self._fail(method, error, context, opened)
            finally:
                self._close(method, context, opened)

        return call

    def _stream(self, method: str, behavior: Behavior) -> Behavior:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> None:
            opened = self._open(method, context)
            responses: AsyncIterator[Any] = behavior(request, context)
            try:
                async for response in responses:
                    await context.write(response)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await self._fail(method, error, context, opened)
            finally:
                await responses.aclose()  # type: ignore[attr-defined]
                self._close(method, context, opened)

        return stream

    def _open(self, method: str, context: grpc.aio.ServicerContext) -> _Call:
        """The call's span, made current (none for ``UNTRACED``), and its start time."""
        started = time.perf_counter()
        if method in UNTRACED:
            return _Call(started, trace.INVALID_SPAN, None)
        parent = propagate.extract(dict(context.invocation_metadata() or ()))
        span = self._tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=_attributes(method)
        )
        return _Call(started, span, otel_context.attach(trace.set_span_in_context(span, parent)))

    def _close(self, method: str, context: grpc.aio.ServicerContext, call: _Call) -> None:
        code = context.code() or grpc.StatusCode.OK
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        if call.token is not None:
            otel_context.detach(call.token)
            span = call.span
            if span.is_recording():
                span.set_attribute("rpc.grpc.status_code", _code_value(code))
                if code is not grpc.StatusCode.OK:
                    span.set_status(Status(StatusCode.ERROR, name))
            span.end()
        elapsed_ms = (time.perf_counter() - call.started) * 1000
        self._duration.record(elapsed_ms, {"rpc.method": method, "rpc.grpc.status_code": name})

    async def _fail(
        self, method: str, error: Exception, context: grpc.aio.ServicerContext, call: _Call
    ) -> None:
        """Send the status the client gets; ``abort`` ends the call (raises AbortError)."""
        if isinstance(error, DomainError):
            # ErrorInfo.domain is the raising service's proto package, as the contract says.
            service = method.lstrip("/").split("/", 1)[0]
            status = to_status(error, service.rsplit(".", 1)[0])
            await context.abort(status.code, status.details, status.trailing_metadata)
        call.span.record_exception(error)
        log.exception("unhandled error in rpc", exc_info=error)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _code_value(code: Any) -> int:
    return int(code.value[0]) if isinstance(code, grpc.StatusCode) else int(code)
