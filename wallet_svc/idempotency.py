"""Idempotency: the fingerprint of a request and the stored first answer.

Every mutating call is stored as (method, key, fingerprint, answer) in the same transaction as
its effect: a crash before the commit leaves nothing (the retry runs afresh), a crash after it
leaves the answer (the retry gets it back). The fingerprint hashes the whole deterministic
serialization of the request, key included, so any change of payload under the same key is
caught; the fencing token is left out, as it says who may ask, not what is asked (a table's new
owner finishing its predecessor's settlement sends the same payload with a newer token).
Answers are bytes, kept exactly as first sent: a response message, or a ``google.rpc.Status``
for a domain error (an error is an answer too: a retry of a refused withdrawal must not succeed
later because the balance changed meanwhile).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from casino_kit.errors import AlreadyExists, DomainError, Unavailable, to_status

DOMAIN = "casino.wallet.v1"
"""The ErrorInfo domain: the raising service's proto package, as the kit's interceptor uses."""

_DETAILS_KEY = "grpc-status-details-bin"


def fingerprint(method: str, request: Message) -> bytes:
    """SHA-256 of the method name and the request's deterministic serialization."""
    if "fencing_token" in request.DESCRIPTOR.fields_by_name:
        copy = type(request)()
        copy.CopyFrom(request)
        copy.ClearField("fencing_token")
        request = copy
    digest = hashlib.sha256(method.encode())
    digest.update(b"\x00")
    digest.update(request.SerializeToString(deterministic=True))
    return digest.digest()


@dataclass(frozen=True, slots=True)
class Answer:
    """What a mutating call answered: response bytes when ``ok``, else Status bytes."""

    ok: bool
    body: bytes

    @staticmethod
    def of_error(error: DomainError) -> Answer:
        status = to_status(error, DOMAIN)
        details = dict(status.trailing_metadata)[_DETAILS_KEY]
        return Answer(False, bytes(details))

    def status(self) -> grpc.Status:
        """The gRPC status to abort with, rebuilt from the stored bytes."""
        status: grpc.Status = rpc_status.to_status(status_pb2.Status.FromString(self.body))
        return status


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored call: what ``key`` was first used for and answered."""

    method: str
    key: str
    fingerprint: bytes
    answer: Answer


UNAVAILABLE = Answer.of_error(
    Unavailable("STORAGE_UNAVAILABLE", "the ledger is unavailable; retry")
)
"""The answer when the ledger cannot run a call now (nothing was committed: retry)."""

INTERNAL = Answer(
    False,
    status_pb2.Status(
        code=grpc.StatusCode.INTERNAL.value[0], message="internal error"
    ).SerializeToString(),
)
"""The answer to a call that failed in an unexpected way (logged where it happened)."""


def key_reused(method: str, key: str) -> AlreadyExists:
    return AlreadyExists(
        "IDEMPOTENCY_KEY_REUSED",
        f"idempotency key {key!r} was used before with a different {method} request",
        metadata={"idempotency_key": key},
    )


def replay(stored: Stored, method: str, print_: bytes) -> Answer:
    """The stored answer for a repeat, or ALREADY_EXISTS if the payload differs."""
    if stored.fingerprint != print_ or stored.method != method:
        raise key_reused(method, stored.key)
    return stored.answer
