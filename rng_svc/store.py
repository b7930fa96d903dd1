"""SQL storage of rounds, the audit log and signing keys (PostgreSQL or SQLite).

The audit log is append-only: rows are inserted once, and the only later change is filling
``revealed_seed`` (checked against the signed commitment). Database triggers refuse any
other update and every delete; unique constraints on ``sequence``, ``prev_record_hash`` and
``round_id`` make a forked chain impossible even when two writers race.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from rng_svc.records import OutcomeRecord
from rng_svc.rounds import Round, State

metadata = MetaData()

rounds = Table(
    "rng_rounds",
    metadata,
    Column("round_id", String(128), primary_key=True),
    Column("table_id", String(128), nullable=False),
    Column("seed_id", String(64), nullable=False, unique=True),
    Column("algorithm", String(64), nullable=False),
    Column("commitment", String(64), nullable=False),
    Column("server_seed", LargeBinary, nullable=False),
    Column("committed_at_s", BigInteger, nullable=False),
    Column("committed_at_ns", Integer, nullable=False),
    Column("commit_key", String(128), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("draw_key", String(128), unique=True),
    Column("reveal_key", String(128), unique=True),
    CheckConstraint("state IN ('committed', 'drawn', 'revealed')", name="rng_rounds_state"),
)

audit_log = Table(
    "rng_audit_log",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("round_id", String(128), nullable=False, unique=True),
    Column("table_id", String(128), nullable=False),
    Column("algorithm", String(64), nullable=False),
    Column("commitment", String(64), nullable=False),
    Column("client_seed", String(128), nullable=False),
    Column("draw", String(64), nullable=False),
    Column("outcome", Text, nullable=False),
    Column("created_at_s", BigInteger, nullable=False),
    Column("created_at_ns", Integer, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("prev_record_hash", String(64), nullable=False, unique=True),
    Column("record_hash", String(64), nullable=False, unique=True),
    Column("signature", LargeBinary, nullable=False),
    Column("revealed_seed", String(64)),
    CheckConstraint("sequence >= 1", name="rng_audit_log_sequence_positive"),
)

signing_keys = Table(
    "rng_signing_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("algorithm", String(64), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("created_at_s", BigInteger, nullable=False),
    Column("created_at_ns", Integer, nullable=False),
    Column("retired_at_s", BigInteger),
    Column("retired_at_ns", Integer),
)


@dataclass(frozen=True)
class KeyInfo:
    """A signing key's public half as registered in the database."""

    key_id: str
    algorithm: str
    public_key: bytes
    created_at_s: int
    created_at_ns: int
    retired_at_s: int | None = None
    retired_at_ns: int | None = None


def _round(row: RowMapping) -> Round:
    return Round(
        round_id=row["round_id"],
        table_id=row["table_id"],
        seed_id=row["seed_id"],
        algorithm=row["algorithm"],
        commitment=row["commitment"],
        server_seed=bytes(row["server_seed"]),
        committed_at_s=row["committed_at_s"],
        committed_at_ns=row["committed_at_ns"],
        commit_key=row["commit_key"],
        state=State(row["state"]),
        draw_key=row["draw_key"],
        reveal_key=row["reveal_key"],
    )


def record_of(row: RowMapping) -> OutcomeRecord:
    """A stored row as a record, byte for byte: nothing is normalised on the way."""
    return OutcomeRecord(
        sequence=row["sequence"],
        round_id=row["round_id"],
        table_id=row["table_id"],
        algorithm=row["algorithm"],
        commitment=row["commitment"],
        client_seed=row["client_seed"],
        draw=row["draw"],
        outcome=row["outcome"],
        created_at_s=row["created_at_s"],
        created_at_ns=row["created_at_ns"],
        key_id=row["key_id"],
        prev_record_hash=row["prev_record_hash"],
        record_hash=row["record_hash"],
        signature=bytes(row["signature"]),
        revealed_seed=row["revealed_seed"] or "",
    )


async def round_by_id(connection: AsyncConnection, round_id: str) -> Round | None:
    row = (
        (await connection.execute(select(rounds).where(rounds.c.round_id == round_id)))
        .mappings()
        .first()
    )
    return None if row is None else _round(row)


async def round_by_key(connection: AsyncConnection, column: str, key: str) -> Round | None:
    """The round whose ``commit_key``, ``draw_key`` or ``reveal_key`` is ``key``."""
    row = (
        (await connection.execute(select(rounds).where(rounds.c[column] == key))).mappings().first()
    )
    return None if row is None else _round(row)


async def insert_round(connection: AsyncConnection, round_: Round) -> None:
    await connection.execute(
        rounds.insert().values(
            round_id=round_.round_id,
            table_id=round_.table_id,
            seed_id=round_.seed_id,
            algorithm=round_.algorithm,
            commitment=round_.commitment,
            server_seed=round_.server_seed,
            committed_at_s=round_.committed_at_s,
            committed_at_ns=round_.committed_at_ns,
            commit_key=round_.commit_key,
            state=round_.state.value,
        )
    )


async def save_state(connection: AsyncConnection, round_: Round, expected: State) -> None:
    """Store a transition; the ``expected`` guard makes a lost race fail loudly."""
    result = await connection.execute(
        update(rounds)
        .where(rounds.c.round_id == round_.round_id, rounds.c.state == expected.value)
        .values(state=round_.state.value, draw_key=round_.draw_key, reveal_key=round_.reveal_key)
    )
    if result.rowcount != 1:
        raise RuntimeError(f"round {round_.round_id} changed state concurrently")


async def record_by_round(connection: AsyncConnection, round_id: str) -> OutcomeRecord | None:
    row = (
        (await connection.execute(select(audit_log).where(audit_log.c.round_id == round_id)))
        .mappings()
        .first()
    )
    return None if row is None else record_of(row)


async def head(connection: AsyncConnection) -> tuple[int, str] | None:
    """The last record's sequence and hash, or None for an empty log."""
    last = select(func.max(audit_log.c.sequence)).scalar_subquery()
    row = (
        await connection.execute(
            select(audit_log.c.sequence, audit_log.c.record_hash).where(
                audit_log.c.sequence == last
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def lock_chain(connection: AsyncConnection) -> None:
    """Hold the audit chain for this transaction, so replicas on one PostgreSQL database
    append in turns instead of racing for the next sequence and retrying (under load a
    replica could lose every retry). SQLite already admits one writer at a time."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('casino.rng.chain'))"))


async def append(connection: AsyncConnection, record: OutcomeRecord) -> None:
    await connection.execute(
        audit_log.insert().values(
            sequence=record.sequence,
            round_id=record.round_id,
            table_id=record.table_id,
            algorithm=record.algorithm,
            commitment=record.commitment,
            client_seed=record.client_seed,
            draw=record.draw,
            outcome=record.outcome,
            created_at_s=record.created_at_s,
            created_at_ns=record.created_at_ns,
            key_id=record.key_id,
            prev_record_hash=record.prev_record_hash,
            record_hash=record.record_hash,
            signature=record.signature,
            revealed_seed=record.revealed_seed or None,
        )
    )


async def set_revealed(connection: AsyncConnection, round_id: str, seed_hex: str) -> None:
    await connection.execute(
        update(audit_log)
        .where(audit_log.c.round_id == round_id, audit_log.c.revealed_seed.is_(None))
        .values(revealed_seed=seed_hex)
    )


async def records(
    connection: AsyncConnection, from_sequence: int = 1, to_sequence: int = 0, page: int = 1000
) -> AsyncIterator[OutcomeRecord]:
    """Records in sequence order, read a page at a time so a long log fits in memory."""
    after = from_sequence - 1
    while True:
        query = (
            select(audit_log)
            .where(audit_log.c.sequence > after)
            .order_by(audit_log.c.sequence)
            .limit(page)
        )
        if to_sequence:
            query = query.where(audit_log.c.sequence <= to_sequence)
        rows = (await connection.execute(query)).mappings().all()
        for row in rows:
            yield record_of(row)
        if len(rows) < page:
            return
        after = rows[-1]["sequence"]


async def record_hash_at(connection: AsyncConnection, sequence: int) -> str | None:
    row = (
        await connection.execute(
            select(audit_log.c.record_hash).where(audit_log.c.sequence == sequence)
        )
    ).first()
    return None if row is None else str(row[0])


def _key(row: RowMapping) -> KeyInfo:
    return KeyInfo(
        key_id=row["key_id"],
        algorithm=row["algorithm"],
        public_key=bytes(row["public_key"]),
        created_at_s=row["created_at_s"],
        created_at_ns=row["created_at_ns"],
        retired_at_s=row["retired_at_s"],
        retired_at_ns=row["retired_at_ns"],
    )


async def keys(connection: AsyncConnection) -> list[KeyInfo]:
    rows = (await connection.execute(select(signing_keys))).mappings().all()
    return [_key(row) for row in rows]


async def register_key(connection: AsyncConnection, key: KeyInfo) -> None:
    """Make ``key`` the signing key: insert it if new, retire whichever key signed before."""
    known = {k.key_id: k for k in await keys(connection)}
    if key.key_id not in known:
        await connection.execute(
            signing_keys.insert().values(
                key_id=key.key_id,
                algorithm=key.algorithm,
                public_key=key.public_key,
                created_at_s=key.created_at_s,
                created_at_ns=key.created_at_ns,
            )
        )
    elif known[key.key_id].retired_at_s is not None:
        await connection.execute(
            update(signing_keys)
            .where(signing_keys.c.key_id == key.key_id)
            .values(retired_at_s=None, retired_at_ns=None)
        )
    await connection.execute(
        update(signing_keys)
        .where(signing_keys.c.key_id != key.key_id, signing_keys.c.retired_at_s.is_(None))
        .values(retired_at_s=key.created_at_s, retired_at_ns=key.created_at_ns)
    )


async def drawn_rounds_without_record(connection: AsyncConnection) -> list[str]:
    """Rounds the service drew whose record is gone: a log cut short at its end shows here."""
    query = (
        select(rounds.c.round_id)
        .where(
            rounds.c.state != State.COMMITTED.value,
            rounds.c.round_id.not_in(select(audit_log.c.round_id)),
        )
        .order_by(rounds.c.round_id)
    )
    return [row[0] for row in (await connection.execute(query)).all()]
