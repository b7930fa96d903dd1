"""Verification of the audit log and of single rounds, from stored bytes and public keys only.

Pure: used by ``casino verify``, by the VerifyAuditLog RPC and by the tests. It trusts
nothing in a record: it recomputes every hash, checks every link and signature, checks each
revealed seed against its commitment and re-derives the outcome from the seeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from rng_svc import fairness
from rng_svc.keys import verify_signature
from rng_svc.records import GENESIS_HASH, OutcomeRecord


class Failure(StrEnum):
    """Why a record failed; the names match ``casino.rng.v1.AuditFailure`` without prefix."""

    HASH_MISMATCH = "HASH_MISMATCH"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SEQUENCE_GAP = "SEQUENCE_GAP"
    SEED_MISMATCH = "SEED_MISMATCH"
    OUTCOME_MISMATCH = "OUTCOME_MISMATCH"


@dataclass(frozen=True)
class BadRecord:
    """The first record that failed, named by sequence and round, and why."""

    sequence: int
    round_id: str
    failure: Failure
    detail: str

    def __str__(self) -> str:
        return (
            f"record #{self.sequence} (round {self.round_id}): {self.failure.value}: {self.detail}"
        )


@dataclass(frozen=True)
class Verdict:
    """The result of checking records: ``bad`` is None when all verified."""

    checked: int
    last_hash: str
    bad: BadRecord | None = None
    revealed: int = 0

    @property
    def ok(self) -> bool:
        return self.bad is None


def _seed_bytes(revealed_seed: str) -> bytes | None:
    if len(revealed_seed) != 2 * fairness.SEED_BYTES or revealed_seed != revealed_seed.lower():
        return None
    try:
        return bytes.fromhex(revealed_seed)
    except ValueError:
        return None


def check_revealed(record: OutcomeRecord) -> tuple[Failure, str] | None:
    """For a revealed record: the seed must hash to the commitment and re-derive the outcome."""
    seed = _seed_bytes(record.revealed_seed)
    if seed is None or hashlib.sha256(seed).hexdigest() != record.commitment:
        return Failure.SEED_MISMATCH, "the revealed seed does not hash to the commitment"
    if record.algorithm != fairness.ALGORITHM:
        return Failure.OUTCOME_MISMATCH, f"unknown algorithm {record.algorithm!r}"
    try:
        draw = fairness.parse_draw(record.draw)
        expected = fairness.derive(draw, seed, record.round_id, record.client_seed)
        stored = record.outcome_values()
    except ValueError as error:
        return Failure.OUTCOME_MISMATCH, f"cannot re-derive: {error}"
    if expected != stored:
        return Failure.OUTCOME_MISMATCH, "the seeds derive a different outcome"
    return None


def check_record(
    record: OutcomeRecord, public_keys: Mapping[str, bytes]
) -> tuple[Failure, str] | None:
    """Checks of one record on its own: its hash, its signature, its seed and outcome."""
    try:
        computed = record.computed_hash()
    except ValueError as error:
        return Failure.HASH_MISMATCH, str(error)
    if computed != record.record_hash:
        return Failure.HASH_MISMATCH, "the record's fields do not hash to its record_hash"
    public_key = public_keys.get(record.key_id)
    if public_key is None:
        return Failure.SIGNATURE_INVALID, f"signed by untrusted key {record.key_id!r}"
    if not verify_signature(public_key, record.signature, record.signed_message()):
        return Failure.SIGNATURE_INVALID, "the signature does not verify"
    if record.revealed_seed:
        return check_revealed(record)
    return None


class ChainVerifier:
    """Checks records fed in sequence order, one at a time, so a log of any length streams
    through in constant memory. ``first_sequence`` and ``prev_hash`` anchor a range that
    does not start at the genesis."""

    def __init__(
        self,
        public_keys: Mapping[str, bytes],
        *,
        first_sequence: int = 1,
        prev_hash: str = GENESIS_HASH,
    ) -> None:
        self.public_keys = public_keys
        self.expected = first_sequence
        self.last_hash = prev_hash
        self.checked = 0
        self.revealed = 0
        self.bad: BadRecord | None = None

    def feed(self, record: OutcomeRecord) -> bool:
        """Check the next record; False once a record failed (later ones are not checked)."""
        if self.bad is not None:
            return False
        failure: tuple[Failure, str] | None = None
        if record.sequence != self.expected:
            failure = Failure.SEQUENCE_GAP, f"expected sequence {self.expected}"
        elif record.prev_record_hash != self.last_hash:
            failure = Failure.CHAIN_BROKEN, "prev_record_hash differs from the previous record"
        else:
            failure = check_record(record, self.public_keys)
        if failure is not None:
            self.bad = BadRecord(record.sequence, record.round_id, *failure)
            return False
        self.checked += 1
        self.revealed += bool(record.revealed_seed)
        self.expected, self.last_hash = record.sequence + 1, record.record_hash
        return True

    def verdict(self) -> Verdict:
        return Verdict(self.checked, self.last_hash, self.bad, self.revealed)


def verify_chain(
    records: Iterable[OutcomeRecord],
    public_keys: Mapping[str, bytes],
    *,
    first_sequence: int = 1,
    prev_hash: str = GENESIS_HASH,
) -> Verdict:
    """Check records in order, stopping at the first bad one."""
    verifier = ChainVerifier(public_keys, first_sequence=first_sequence, prev_hash=prev_hash)
    for record in records:
        if not verifier.feed(record):
            break
    return verifier.verdict()


@dataclass(frozen=True)
class RoundVerdict:
    """One round: whether its record verifies and, once revealed, re-derives."""

    record: OutcomeRecord
    bad: BadRecord | None
    revealed: bool

    @property
    def ok(self) -> bool:
        return self.bad is None and self.revealed


def verify_round(record: OutcomeRecord, public_keys: Mapping[str, bytes]) -> RoundVerdict:
    """Re-derive a round from its revealed seed and check it against the signed record."""
    failure = check_record(record, public_keys)
    bad = None if failure is None else BadRecord(record.sequence, record.round_id, *failure)
    return RoundVerdict(record, bad, bool(record.revealed_seed))
