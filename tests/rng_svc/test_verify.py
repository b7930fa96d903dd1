"""Records and their verification, pure: every changed byte is caught and named."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rng_svc import fairness
from rng_svc.keys import SoftwareKey
from rng_svc.records import GENESIS_HASH, OutcomeRecord, parse_outcome
from rng_svc.verify import Failure, verify_chain, verify_round

KEY = SoftwareKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
TRUSTED = {KEY.key_id: KEY.public_key}
DRAWS: list[fairness.Draw] = [fairness.Roulette(), fairness.Shuffle(2), fairness.Integers(10, 5)]


async def build_chain(length: int = 6, revealed: int = 4) -> list[OutcomeRecord]:
    """A valid chain signed by KEY; the first ``revealed`` records have their seeds out."""
    chain: list[OutcomeRecord] = []
    prev = GENESIS_HASH
    for i in range(length):
        seed = hashlib.sha256(f"seed-{i}".encode()).digest()
        draw = DRAWS[i % len(DRAWS)]
        round_id, client_seed = f"round-{i}", f"client-{i}"
        outcome = fairness.derive(draw, seed, round_id, client_seed)
        record = OutcomeRecord(
            sequence=i + 1,
            round_id=round_id,
            table_id="table-1",
            algorithm=fairness.ALGORITHM,
            commitment=fairness.commitment_of(seed),
            client_seed=client_seed,
            draw=draw.text(),
            outcome=",".join(map(str, outcome)),
            created_at_s=1_795_000_000 + i,
            created_at_ns=5,
            key_id=KEY.key_id,
            prev_record_hash=prev,
        ).hashed()
        record = record.signed(await KEY.sign(record.signed_message()))
        if i < revealed:
            record = record.revealed(seed.hex())
        chain.append(record)
        prev = record.record_hash
    return chain


async def test_a_valid_chain_verifies() -> None:
    chain = await build_chain()
    verdict = verify_chain(chain, TRUSTED)
    assert verdict.ok and verdict.checked == 6 and verdict.revealed == 4
    assert verdict.last_hash == chain[-1].record_hash
    assert verify_chain([], TRUSTED).ok


def test_the_preimage_is_the_documented_lines() -> None:
    record = OutcomeRecord(
        sequence=12,
        round_id="r",
        table_id="t",
        algorithm="A",
        commitment="c",
        client_seed="s",
        draw="roulette",
        outcome="7",
        created_at_s=10,
        created_at_ns=42,
        key_id="k",
        prev_record_hash="p",
    )
    assert record.preimage() == (
        b"casino-rng-record-v1\n12\nr\nt\nA\nc\ns\nroulette\n7\n10.000000042\nk\np\n"
    )
    with pytest.raises(ValueError, match="newline"):
        dataclasses.replace(record, client_seed="a\nb").preimage()


@pytest.mark.parametrize("text", ["", "1,", ",1", "01", "+1", "1, 2", "1;2", "١"])
def test_outcome_text_is_strict(text: str) -> None:
    with pytest.raises(ValueError):
        parse_outcome(text)


def flip_text(value: str) -> str:
    """Change one character (the last), keeping the text printable."""
    last = value[-1]
    return value[:-1] + ("1" if last != "1" else "2")


def flip(record: OutcomeRecord, field: str) -> OutcomeRecord:
    value = getattr(record, field)
    if isinstance(value, bytes):
        changed: object = value[:-1] + bytes([value[-1] ^ 0x01])
    elif isinstance(value, int):
        changed = value + 1
    else:
        changed = flip_text(value)
    changes: dict[str, Any] = {field: changed}
    return dataclasses.replace(record, **changes)


EXPECTED_FAILURE = {
    "sequence": Failure.SEQUENCE_GAP,
    "prev_record_hash": Failure.CHAIN_BROKEN,
    "signature": Failure.SIGNATURE_INVALID,
    "key_id": Failure.HASH_MISMATCH,
    "revealed_seed": Failure.SEED_MISMATCH,
    "record_hash": Failure.HASH_MISMATCH,
}
FIELDS = [f.name for f in dataclasses.fields(OutcomeRecord)]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("index", [0, 2, 5])
async def test_any_changed_field_fails_and_names_the_record(field: str, index: int) -> None:
    chain = await build_chain()
    if field == "revealed_seed" and not chain[index].revealed_seed:
        index = 0
    chain[index] = flip(chain[index], field)
    verdict = verify_chain(chain, TRUSTED)
    assert verdict.bad is not None
    assert (verdict.bad.sequence, verdict.bad.round_id) == (
        chain[index].sequence,
        chain[index].round_id,
    )
    assert verdict.bad.failure == EXPECTED_FAILURE.get(field, Failure.HASH_MISMATCH)
    assert verdict.checked == index
    assert f"round {chain[index].round_id}" in str(verdict.bad)


async def test_a_removed_record_is_a_gap() -> None:
    chain = await build_chain()
    del chain[3]
    verdict = verify_chain(chain, TRUSTED)
    assert verdict.bad is not None
    assert (verdict.bad.sequence, verdict.bad.failure) == (5, Failure.SEQUENCE_GAP)


async def test_a_resigned_forgery_fails_without_the_key() -> None:
    """Someone who rewrites a record and re-signs it with their own key is not trusted."""
    chain = await build_chain(3, revealed=0)
    forger = SoftwareKey(Ed25519PrivateKey.generate())
    forged = dataclasses.replace(chain[1], outcome="0", key_id=forger.key_id).hashed()
    chain[1] = forged.signed(await forger.sign(forged.signed_message()))
    verdict = verify_chain(chain, TRUSTED)
    assert verdict.bad is not None and verdict.bad.failure == Failure.SIGNATURE_INVALID
    assert "untrusted key" in verdict.bad.detail


async def test_a_consistent_but_wrong_outcome_is_caught_on_reveal() -> None:
    """A record signed with an outcome the seeds do not give fails once revealed."""
    chain = await build_chain(1, revealed=1)
    wrong = dataclasses.replace(chain[0], outcome="0" if chain[0].outcome != "0" else "1")
    wrong = wrong.hashed()
    wrong = wrong.signed(await KEY.sign(wrong.signed_message()))
    verdict = verify_chain([wrong], TRUSTED)
    assert verdict.bad is not None and verdict.bad.failure == Failure.OUTCOME_MISMATCH


async def test_verify_round_needs_the_revealed_seed() -> None:
    chain = await build_chain(2, revealed=1)
    revealed, hidden = verify_round(chain[0], TRUSTED), verify_round(chain[1], TRUSTED)
    assert revealed.ok
    assert hidden.bad is None and not hidden.revealed and not hidden.ok
    tampered = verify_round(flip(chain[0], "revealed_seed"), TRUSTED)
    assert tampered.bad is not None and tampered.bad.failure == Failure.SEED_MISMATCH


async def test_a_range_is_anchored_on_the_record_before_it() -> None:
    chain = await build_chain()
    tail = chain[3:]
    assert verify_chain(tail, TRUSTED, first_sequence=4, prev_hash=chain[2].record_hash).ok
    verdict = verify_chain(tail, TRUSTED, first_sequence=4, prev_hash=chain[1].record_hash)
    assert verdict.bad is not None and verdict.bad.failure == Failure.CHAIN_BROKEN
