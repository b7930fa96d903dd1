"""Errors of game_svc and wallet_svc relayed to the player with their code and reason.

An upstream's answer such as NOT_FOUND with TABLE_NOT_FOUND is the player's answer too; an
upstream that is down is UNAVAILABLE (retry), never an opaque INTERNAL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

from casino_kit.errors import DomainError, details_of

_RELAYED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


class UpstreamError(DomainError):
    """An upstream service's error, passed on as it came."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str, **kw: object) -> None:
        super().__init__(reason, message, **kw)  # type: ignore[arg-type]
        self.code = code


@contextlib.contextmanager
def relayed() -> Iterator[None]:
    """Turn an upstream call's error into the same error for the player."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        details = details_of(error)
        code = details.code if details.code in _RELAYED else grpc.StatusCode.UNAVAILABLE
        reason = details.reason or code.name
        raise UpstreamError(
            code,
            reason,
            details.message or reason,
            metadata=details.metadata,
            violations=details.violations,
        ) from None
