"""The round rules, pure: lifecycle, idempotency, refusals, input checks."""

from __future__ import annotations

import dataclasses

import pytest

from casino_kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from rng_svc import fairness
from rng_svc.records import OutcomeRecord
from rng_svc.rounds import (
    CommitRequest,
    DrawRequest,
    IllegalTransition,
    RevealRequest,
    Round,
    State,
    check_commit,
    check_draw,
    check_reveal,
    decide_commit,
    decide_draw,
    decide_reveal,
)

ROUND = Round(
    round_id="r1",
    table_id="t1",
    seed_id="s1",
    algorithm=fairness.ALGORITHM,
    commitment="c" * 64,
    server_seed=bytes(32),
    committed_at_s=1,
    committed_at_ns=2,
    commit_key="commit:r1",
)
RECORD = OutcomeRecord(
    sequence=1,
    round_id="r1",
    table_id="t1",
    algorithm=fairness.ALGORITHM,
    commitment="c" * 64,
    client_seed="seed",
    draw="roulette",
    outcome="7",
    created_at_s=3,
    created_at_ns=4,
    key_id="k",
    prev_record_hash="0" * 64,
)
DRAW = DrawRequest("draw:r1", "r1", "seed", fairness.Roulette())


def test_the_lifecycle_only_moves_forward() -> None:
    drawn = ROUND.advanced(State.DRAWN, key="draw:r1")
    assert (drawn.state, drawn.draw_key) == (State.DRAWN, "draw:r1")
    revealed = drawn.advanced(State.REVEALED, key="reveal:r1")
    assert (revealed.state, revealed.reveal_key) == (State.REVEALED, "reveal:r1")
    for bad_from, bad_to in [
        (ROUND, State.REVEALED),
        (ROUND, State.COMMITTED),
        (drawn, State.DRAWN),
        (revealed, State.DRAWN),
        (revealed, State.REVEALED),
    ]:
        with pytest.raises(IllegalTransition):
            bad_from.advanced(bad_to, key="k")


def test_commit_decisions() -> None:
    request = CommitRequest("commit:r1", "r1", "t1")
    assert decide_commit(request, None, None) is None
    assert decide_commit(request, ROUND, ROUND) is ROUND
    with pytest.raises(AlreadyExists) as refused:
        decide_commit(dataclasses.replace(request, idempotency_key="other"), None, ROUND)
    assert refused.value.reason == "SEED_ALREADY_COMMITTED"
    for changed in ({"round_id": "r2"}, {"table_id": "t2"}):
        with pytest.raises(AlreadyExists) as reused:
            decide_commit(dataclasses.replace(request, **changed), ROUND, None)
        assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"


def test_draw_decisions() -> None:
    drawn = ROUND.advanced(State.DRAWN, key="draw:r1")
    with pytest.raises(FailedPrecondition) as missing:
        decide_draw(DRAW, None, None, None)
    assert missing.value.reason == "SEED_NOT_COMMITTED"
    assert decide_draw(DRAW, ROUND, None, None) is None
    assert decide_draw(DRAW, drawn, RECORD, "r1") is RECORD
    assert decide_draw(dataclasses.replace(DRAW, idempotency_key="retry"), drawn, RECORD, None)
    with pytest.raises(FailedPrecondition) as fishing:
        decide_draw(DrawRequest("other", "r1", "seed-2", fairness.Roulette()), drawn, RECORD, None)
    assert fishing.value.reason == "OUTCOME_ALREADY_DRAWN"
    with pytest.raises(AlreadyExists) as reused:
        decide_draw(dataclasses.replace(DRAW, draw=fairness.Shuffle(1)), drawn, RECORD, "r1")
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(AlreadyExists):
        decide_draw(DRAW, ROUND, None, "another-round")


def test_reveal_decisions() -> None:
    request = RevealRequest("reveal:r1", "r1")
    with pytest.raises(NotFound):
        decide_reveal(request, None, None)
    with pytest.raises(FailedPrecondition) as early:
        decide_reveal(request, ROUND, None)
    assert early.value.reason == "OUTCOME_NOT_DRAWN"
    drawn = ROUND.advanced(State.DRAWN, key="draw:r1")
    assert decide_reveal(request, drawn, None) is True
    assert decide_reveal(request, drawn.advanced(State.REVEALED, key="k"), "r1") is False
    with pytest.raises(AlreadyExists):
        decide_reveal(request, drawn, "r2")


def fields_of(error: pytest.ExceptionInfo[InvalidArgument]) -> set[str]:
    return {v.field for v in error.value.violations}


def test_input_checks_name_every_bad_field() -> None:
    with pytest.raises(InvalidArgument) as commit:
        check_commit(CommitRequest("", "x" * 129, "tab\tle", "FAIRNESS_ALGORITHM_V0"))
    assert fields_of(commit) == {"idempotency_key", "round_id", "table_id", "algorithm"}
    with pytest.raises(InvalidArgument) as draw:
        check_draw(DrawRequest("k", "r", "", fairness.Integers(10, 1001)))
    assert fields_of(draw) == {"client_seed", "draw.integers.count"}
    with pytest.raises(InvalidArgument) as none:
        check_draw(DrawRequest("k", "r", "s", None))
    assert fields_of(none) == {"draw"}
    with pytest.raises(InvalidArgument) as reveal:
        check_reveal(RevealRequest("k", ""))
    assert fields_of(reveal) == {"round_id"}
    check_commit(CommitRequest("k", "r", "t"))
    check_draw(DrawRequest("k", "r", " ~printable~ ", fairness.Shuffle(8)))
