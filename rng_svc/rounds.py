"""The rules of a round's seed: committed -> drawn -> revealed, idempotent at every step.

Pure: given what storage holds, each ``decide_*`` function says whether a request replays
an earlier answer, must be refused (a typed domain error), or may proceed. Storage and
signing live in ``operations``; these rules are unit-tested without either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from casino_kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from casino_kit.logs import get_logger
from rng_svc import fairness
from rng_svc.records import OutcomeRecord

log = get_logger(__name__)

MAX_TEXT = 128


class State(StrEnum):
    COMMITTED = "committed"
    DRAWN = "drawn"
    REVEALED = "revealed"


_NEXT = {State.COMMITTED: State.DRAWN, State.DRAWN: State.REVEALED}


class IllegalTransition(RuntimeError):
    """A state change the lifecycle does not allow: a bug, never a client error."""


@dataclass(frozen=True)
class Round:
    """A round's seed as stored; ``server_seed`` stays secret until ``REVEALED``."""

    round_id: str
    table_id: str
    seed_id: str
    algorithm: str
    commitment: str
    server_seed: bytes
    committed_at_s: int
    committed_at_ns: int
    commit_key: str
    state: State = State.COMMITTED
    draw_key: str | None = None
    reveal_key: str | None = None

    def advanced(self, to: State, *, key: str) -> Round:
        """The one transition method: committed -> drawn -> revealed, nothing else."""
        if _NEXT.get(self.state) is not to:
            raise IllegalTransition(f"round {self.round_id}: {self.state} -> {to}")
        log.info("round state", round_id=self.round_id, old=self.state.value, new=to.value)
        if to is State.DRAWN:
            return replace(self, state=to, draw_key=key)
        return replace(self, state=to, reveal_key=key)


@dataclass(frozen=True)
class CommitRequest:
    idempotency_key: str
    round_id: str
    table_id: str
    algorithm: str = fairness.ALGORITHM


@dataclass(frozen=True)
class DrawRequest:
    idempotency_key: str
    round_id: str
    client_seed: str
    draw: fairness.Draw | None


@dataclass(frozen=True)
class RevealRequest:
    idempotency_key: str
    round_id: str


def _meta(round_id: str) -> dict[str, str]:
    return {"round_id": round_id}


def _key_reused(round_id: str) -> AlreadyExists:
    return AlreadyExists(
        "IDEMPOTENCY_KEY_REUSED",
        "the idempotency key was already used with a different request",
        metadata=_meta(round_id),
    )


def _text(violations: list[FieldViolation], field: str, value: str) -> None:
    """Ids, keys and seeds: 1 to 128 printable ASCII characters (so never a newline)."""
    if not value:
        violations.append(FieldViolation(field, "is required"))
    elif len(value) > MAX_TEXT or not all(" " <= c <= "~" for c in value):
        violations.append(
            FieldViolation(field, f"must be 1 to {MAX_TEXT} printable ASCII characters")
        )


def check_commit(request: CommitRequest) -> None:
    violations: list[FieldViolation] = []
    _text(violations, "idempotency_key", request.idempotency_key)
    _text(violations, "round_id", request.round_id)
    _text(violations, "table_id", request.table_id)
    if request.algorithm != fairness.ALGORITHM:
        violations.append(FieldViolation("algorithm", f"only {fairness.ALGORITHM} is offered"))
    if violations:
        raise InvalidArgument(violations)


def check_draw(request: DrawRequest) -> None:
    violations: list[FieldViolation] = []
    _text(violations, "idempotency_key", request.idempotency_key)
    _text(violations, "round_id", request.round_id)
    _text(violations, "client_seed", request.client_seed)
    if request.draw is None:
        violations.append(FieldViolation("draw", "is required: roulette, shuffle or integers"))
    else:
        try:
            fairness.check_draw(request.draw)
        except fairness.BadDraw as error:
            kind = type(request.draw).__name__.lower()
            violations.append(FieldViolation(f"draw.{kind}.{error.field}", str(error)))
    if violations:
        raise InvalidArgument(violations)


def check_reveal(request: RevealRequest) -> None:
    violations: list[FieldViolation] = []
    _text(violations, "idempotency_key", request.idempotency_key)
    _text(violations, "round_id", request.round_id)
    if violations:
        raise InvalidArgument(violations)


def decide_commit(
    request: CommitRequest, by_key: Round | None, by_round: Round | None
) -> Round | None:
    """The earlier round to answer with again, or None to commit a new seed.

    A round gets one seed, ever: a second commitment under another key is refused, so no
    one can fish for a seed whose commitment they like.
    """
    if by_key is not None:
        same = (by_key.round_id, by_key.table_id, by_key.algorithm) == (
            request.round_id,
            request.table_id,
            request.algorithm,
        )
        if not same:
            raise _key_reused(request.round_id)
        return by_key
    if by_round is not None:
        raise AlreadyExists(
            "SEED_ALREADY_COMMITTED",
            "a seed was already committed for this round under another idempotency key",
            metadata={**_meta(request.round_id), "commitment": by_round.commitment},
        )
    return None


def decide_draw(
    request: DrawRequest,
    round_: Round | None,
    record: OutcomeRecord | None,
    key_owner: str | None,
) -> OutcomeRecord | None:
    """The earlier record to answer with again, or None to draw now.

    ``key_owner`` is the round already drawn under this idempotency key, if any. A drawn
    round is never drawn again with other inputs: that would let a caller pick an outcome.
    """
    assert request.draw is not None
    if key_owner is not None and key_owner != request.round_id:
        raise _key_reused(request.round_id)
    if round_ is None:
        raise FailedPrecondition(
            "SEED_NOT_COMMITTED",
            "no seed was committed for this round",
            metadata=_meta(request.round_id),
        )
    if round_.state is State.COMMITTED:
        return None
    assert record is not None, "a drawn round has its audit record"
    if (record.client_seed, record.draw) == (request.client_seed, request.draw.text()):
        return record
    if round_.draw_key == request.idempotency_key:
        raise _key_reused(request.round_id)
    raise FailedPrecondition(
        "OUTCOME_ALREADY_DRAWN",
        "the round's outcome was already drawn with other parameters",
        metadata=_meta(request.round_id),
    )


def decide_reveal(request: RevealRequest, round_: Round | None, key_owner: str | None) -> bool:
    """True to reveal now, False to answer with the earlier reveal.

    The seed of a round whose outcome is not drawn stays secret: revealing it would let
    anyone compute the coming outcome.
    """
    if key_owner is not None and key_owner != request.round_id:
        raise _key_reused(request.round_id)
    if round_ is None:
        raise NotFound("ROUND_NOT_FOUND", "no such round", metadata=_meta(request.round_id))
    if round_.state is State.COMMITTED:
        raise FailedPrecondition(
            "OUTCOME_NOT_DRAWN",
            "the round's outcome is not drawn yet, so its seed stays secret",
            metadata=_meta(request.round_id),
        )
    return round_.state is State.DRAWN
