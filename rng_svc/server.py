"""The gRPC adapter: Protobuf requests to domain calls, domain results back to Protobuf."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from casino.common.v1 import common_pb2
from casino.rng.v1 import rng_pb2, rng_service_pb2, rng_service_pb2_grpc
from casino_kit.errors import FieldViolation, InvalidArgument
from rng_svc import fairness, keys, rounds
from rng_svc.operations import Operations, Revealed
from rng_svc.records import OutcomeRecord
from rng_svc.rounds import Round
from rng_svc.store import KeyInfo


def _timestamp(seconds: int, nanos: int) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def algorithm_name(value: int) -> str:
    """The enum value's name; unspecified means the current default."""
    if value == common_pb2.FAIRNESS_ALGORITHM_UNSPECIFIED:
        return fairness.ALGORITHM
    try:
        return common_pb2.FairnessAlgorithm.Name(common_pb2.FairnessAlgorithm.ValueType(value))
    except ValueError:
        return f"UNKNOWN({value})"


def draw_of(spec: rng_pb2.DrawSpec) -> fairness.Draw | None:
    kind = spec.WhichOneof("kind")
    if kind == "roulette":
        return fairness.Roulette()
    if kind == "shuffle":
        return fairness.Shuffle(spec.shuffle.decks)
    if kind == "integers":
        return fairness.Integers(spec.integers.n, spec.integers.count)
    return None


def draw_spec(text: str) -> rng_pb2.DrawSpec:
    draw = fairness.parse_draw(text)
    if isinstance(draw, fairness.Roulette):
        return rng_pb2.DrawSpec(roulette=rng_pb2.RouletteDraw())
    if isinstance(draw, fairness.Shuffle):
        return rng_pb2.DrawSpec(shuffle=rng_pb2.ShuffleDraw(decks=draw.decks))
    return rng_pb2.DrawSpec(integers=rng_pb2.IntegersDraw(n=draw.n, count=draw.count))


def record_message(record: OutcomeRecord) -> rng_pb2.OutcomeRecord:
    return rng_pb2.OutcomeRecord(
        sequence=record.sequence,
        round_id=record.round_id,
        table_id=record.table_id,
        commitment=record.commitment,
        revealed_seed=record.revealed_seed,
        client_seed=record.client_seed,
        algorithm=common_pb2.FairnessAlgorithm.Value(record.algorithm),
        draw=draw_spec(record.draw),
        outcome=record.outcome_values(),
        prev_record_hash=record.prev_record_hash,
        record_hash=record.record_hash,
        signature=record.signature,
        key_id=record.key_id,
        created_at=_timestamp(record.created_at_s, record.created_at_ns),
    )


def commitment_message(round_: Round) -> common_pb2.FairnessCommitment:
    return common_pb2.FairnessCommitment(
        algorithm=common_pb2.FairnessAlgorithm.Value(round_.algorithm),
        commitment=round_.commitment,
        seed_id=round_.seed_id,
        round_id=round_.round_id,
        committed_at=_timestamp(round_.committed_at_s, round_.committed_at_ns),
    )


def proof_message(revealed: Revealed) -> common_pb2.FairnessProof:
    record = revealed.record
    return common_pb2.FairnessProof(
        round_id=record.round_id,
        algorithm=common_pb2.FairnessAlgorithm.Value(record.algorithm),
        commitment=record.commitment,
        server_seed=record.revealed_seed,
        client_seed=record.client_seed,
        outcome=record.outcome_values(),
        signature=record.signature,
        public_key_id=record.key_id,
        audit_record_hash=record.record_hash,
    )


def key_message(info: KeyInfo) -> rng_pb2.PublicKey:
    message = rng_pb2.PublicKey(
        key_id=info.key_id,
        algorithm=rng_pb2.SignatureAlgorithm.Value(info.algorithm),
        raw=info.public_key,
        pem=keys.public_pem(info.public_key),
        created_at=_timestamp(info.created_at_s, info.created_at_ns),
    )
    if info.retired_at_s is not None:
        message.retired_at.CopyFrom(_timestamp(info.retired_at_s, info.retired_at_ns or 0))
    return message


class RngServicer(rng_service_pb2_grpc.RngServiceServicer):
    """Thin: every rule lives in ``rounds`` and ``operations``."""

    def __init__(self, operations: Callable[[], Operations]) -> None:
        self._operations = operations

    async def CommitSeed(
        self, request: rng_service_pb2.CommitSeedRequest, context: grpc.aio.ServicerContext
    ) -> rng_service_pb2.CommitSeedResponse:
        round_ = await self._operations().commit(
            rounds.CommitRequest(
                idempotency_key=request.idempotency_key,
                round_id=request.round_id,
                table_id=request.table_id,
                algorithm=algorithm_name(request.algorithm),
            )
        )
        return rng_service_pb2.CommitSeedResponse(commitment=commitment_message(round_))

    async def DrawOutcome(
        self, request: rng_service_pb2.DrawOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> rng_service_pb2.DrawOutcomeResponse:
        record = await self._operations().draw(
            rounds.DrawRequest(
                idempotency_key=request.idempotency_key,
                round_id=request.round_id,
                client_seed=request.client_seed,
                draw=draw_of(request.draw),
            )
        )
        message = record_message(record)
        return rng_service_pb2.DrawOutcomeResponse(outcome=message.outcome, record=message)

    async def RevealSeed(
        self, request: rng_service_pb2.RevealSeedRequest, context: grpc.aio.ServicerContext
    ) -> rng_service_pb2.RevealSeedResponse:
        revealed = await self._operations().reveal(
            rounds.RevealRequest(idempotency_key=request.idempotency_key, round_id=request.round_id)
        )
        return rng_service_pb2.RevealSeedResponse(proof=proof_message(revealed))

    async def GetOutcomeRecord(
        self, request: rng_service_pb2.GetOutcomeRecordRequest, context: grpc.aio.ServicerContext
    ) -> rng_service_pb2.GetOutcomeRecordResponse:
        if not request.round_id:
            raise InvalidArgument([FieldViolation("round_id", "is required")])
        record = await self._operations().record(request.round_id)
        return rng_service_pb2.GetOutcomeRecordResponse(record=record_message(record))

    async def GetPublicKey(
        self, request: rng_service_pb2.GetPublicKeyRequest, context: grpc.aio.ServicerContext
    ) -> rng_service_pb2.GetPublicKeyResponse:
        info = await self._operations().key(request.key_id)
        return rng_service_pb2.GetPublicKeyResponse(public_key=key_message(info))

    async def VerifyAuditLog(
        self, request: rng_service_pb2.VerifyAuditLogRequest, context: grpc.aio.ServicerContext
    ) -> rng_service_pb2.VerifyAuditLogResponse:
        if request.to_sequence and request.to_sequence < request.from_sequence:
            raise InvalidArgument(
                [FieldViolation("to_sequence", "must be 0 or at least from_sequence")]
            )
        verdict = await self._operations().verify(request.from_sequence, request.to_sequence)
        response = rng_service_pb2.VerifyAuditLogResponse(
            ok=verdict.ok, checked_count=verdict.checked
        )
        if verdict.bad is not None:
            response.first_bad_sequence = verdict.bad.sequence
            response.first_bad_round_id = verdict.bad.round_id
            response.failure = rng_pb2.AuditFailure.Value(f"AUDIT_FAILURE_{verdict.bad.failure}")
        return response
