"""The audit record: its canonical preimage, its hash, and what its signature covers.

Pure. The preimage is the one specified in ``casino.rng.v1.OutcomeRecord`` and in
``docs/fairness.md``: fixed-order lines, each ended by "\\n", none of which may contain a
"\\n", so two different records can never share a preimage. The revealed seed is not part
of it: it is bound by the commitment (SHA-256), so revealing it never changes the record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

RECORD_TAG = "casino-rng-record-v1"
GENESIS_HASH = "0" * 64
"""The ``prev_record_hash`` of the first record."""


@dataclass(frozen=True)
class OutcomeRecord:
    """One audit log entry. ``record_hash`` and ``signature`` are empty until hashed and signed.

    ``draw`` and ``outcome`` are kept in their stored text forms (``shuffle:8``, ``17``), so a
    verifier hashes exactly the bytes that were stored.
    """

    sequence: int
    round_id: str
    table_id: str
    algorithm: str
    commitment: str
    client_seed: str
    draw: str
    outcome: str
    created_at_s: int
    created_at_ns: int
    key_id: str
    prev_record_hash: str
    record_hash: str = ""
    signature: bytes = b""
    revealed_seed: str = ""

    def outcome_values(self) -> tuple[int, ...]:
        return parse_outcome(self.outcome)

    def preimage(self) -> bytes:
        """The exact bytes whose SHA-256 is ``record_hash``."""
        lines = (
            RECORD_TAG,
            str(self.sequence),
            self.round_id,
            self.table_id,
            self.algorithm,
            self.commitment,
            self.client_seed,
            self.draw,
            self.outcome,
            f"{self.created_at_s}.{self.created_at_ns:09d}",
            self.key_id,
            self.prev_record_hash,
        )
        for line in lines:
            if "\n" in line:
                raise ValueError(f"record field contains a newline: {line!r}")
        return "".join(f"{line}\n" for line in lines).encode()

    def computed_hash(self) -> str:
        return hashlib.sha256(self.preimage()).hexdigest()

    def signed_message(self) -> bytes:
        """What the Ed25519 signature covers: the 32 raw bytes of ``record_hash``."""
        return bytes.fromhex(self.record_hash)

    def hashed(self) -> OutcomeRecord:
        """This record with ``record_hash`` computed from its fields, ready to sign."""
        return replace(self, record_hash=self.computed_hash(), signature=b"")

    def signed(self, signature: bytes) -> OutcomeRecord:
        return replace(self, signature=signature)

    def revealed(self, server_seed_hex: str) -> OutcomeRecord:
        return replace(self, revealed_seed=server_seed_hex)


def outcome_text(outcome: tuple[int, ...]) -> str:
    """Decimal numbers joined by ","; the stored and hashed form of an outcome."""
    return ",".join(str(value) for value in outcome)


def parse_outcome(text: str) -> tuple[int, ...]:
    """The inverse of ``outcome_text``; strict, so a changed byte cannot parse to the same
    numbers (no signs, spaces or leading zeros)."""
    values: list[int] = []
    for part in text.split(","):
        if not part.isdigit() or not part.isascii() or (part != "0" and part.startswith("0")):
            raise ValueError(f"not an outcome: {text!r}")
        values.append(int(part))
    return tuple(values)
