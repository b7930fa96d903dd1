"""Domain errors and their one mapping to gRPC status codes with ``google.rpc`` details.

Domain code raises these; the server interceptor turns them into a status whose details
carry an ``ErrorInfo`` (a stable reason such as ``INSUFFICIENT_FUNDS``) and, for bad input,
a ``BadRequest`` naming every offending field. Clients tell bad input from a closed window
from no funds by the reason, never by parsing messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (``amount.amount_minor``) and what is wrong."""

    field: str
    description: str


class DomainError(Exception):
    """An expected failure a client can act on; ``reason`` is a stable UPPER_SNAKE string."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation], reason: str = "INVALID_ARGUMENT"):
        fields = ", ".join(v.field for v in violations)
        super().__init__(reason, f"invalid request: {fields}", violations=violations)


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Aborted(DomainError):
    code = grpc.StatusCode.ABORTED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE


def to_status(error: DomainError, domain: str) -> grpc.Status:
    """The rich gRPC status for ``error``; ``domain`` is the raising service's proto package."""
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    )
    details = [info]
    if error.violations:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
        details.append(bad)
    code: int = getattr(code_pb2, error.code.name)
    return rpc_status.to_status(
        status_pb2.Status(code=code, message=error.message, details=details)
    )


@dataclass(frozen=True)
class ErrorDetails:
    """What a client reads back from a failed call."""

    code: grpc.StatusCode
    message: str
    reason: str | None
    domain: str | None
    metadata: dict[str, str]
    violations: tuple[FieldViolation, ...]


def details_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> ErrorDetails:
    """Decode the ``google.rpc`` details a server attached to a failed call."""
    status = rpc_status.from_call(error)
    reason = domain = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return ErrorDetails(
        code=error.code(),
        message=error.details() or "",
        reason=reason,
        domain=domain,
        metadata=metadata,
        violations=tuple(violations),
    )
