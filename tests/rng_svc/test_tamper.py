"""``casino verify`` against logs a real rng_svc wrote, before and after someone edits them.

The attacker here has the database: they drop the append-only triggers and change bytes.
Verification must fail and name the record, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from casino.rng.v1 import rng_pb2
from tests.rng_svc.conftest import client, integers, running_rng, shuffle

SQLITE_TRIGGERS = (
    "rng_audit_log_no_delete",
    "rng_audit_log_no_update",
    "rng_audit_log_reveal_once",
)


@dataclass(frozen=True)
class Log:
    """A finished service's data dir, its records (the last one unrevealed) and its key."""

    data_dir: Path
    records: list[rng_pb2.OutcomeRecord]
    public_key: Path


async def play_rounds(address: str, public_key: Path) -> list[rng_pb2.OutcomeRecord]:
    draws = [None, shuffle(2), integers(1000, 20), None, shuffle(1)]
    async with client(address) as rng:
        records = [
            await rng.play(str(uuid.uuid4()), draw, reveal=i < len(draws) - 1)
            for i, draw in enumerate(draws)
        ]
        public_key.write_text((await rng.public_key()).pem)
    return records


@pytest_asyncio.fixture(scope="module")
async def sqlite_log(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Log]:
    root = tmp_path_factory.mktemp("tamper")
    async with running_rng(root / "data") as platform:
        records = await play_rounds(platform.addresses["rng_svc"], root / "public.pem")
    yield Log(root / "data", records, root / "public.pem")


async def casino(*args: str | Path) -> tuple[int, str]:
    """Run the real ``casino`` command; its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        shutil.which("casino", path=str(Path(sys.executable).parent)) or "casino",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


def copy_log(log: Log, to: Path) -> Path:
    """A consistent copy of the SQLite database, to edit."""
    to.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(log.data_dir / "rng.db")
    target = sqlite3.connect(to / "rng.db")
    with target:
        source.backup(target)
    source.close()
    target.close()
    return to


def flipped(value: str | bytes | int) -> str | bytes | int:
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return value[:-1] + bytes([value[-1] ^ 0x01])
    return value[:-1] + ("1" if value[-1] != "1" else "2")


def tamper_sqlite(data_dir: Path, sequence: int, column: str) -> None:
    with sqlite3.connect(data_dir / "rng.db") as db:
        for trigger in SQLITE_TRIGGERS:
            db.execute(f"DROP TRIGGER {trigger}")
        (value,) = db.execute(
            f"SELECT {column} FROM rng_audit_log WHERE sequence = ?", (sequence,)
        ).fetchone()
        db.execute(
            f"UPDATE rng_audit_log SET {column} = ? WHERE sequence = ?", (flipped(value), sequence)
        )


async def test_an_untouched_log_verifies(sqlite_log: Log, tmp_path: Path) -> None:
    data = copy_log(sqlite_log, tmp_path / "copy")
    code, output = await casino(
        "verify", "audit", "--data-dir", data, "--public-key", sqlite_log.public_key
    )
    assert code == 0, output
    assert "audit log OK: 5 record(s), 4 revealed" in output
    assert sqlite_log.records[-1].record_hash in output
    first = sqlite_log.records[0]
    code, output = await casino(
        "verify", "round", first.round_id, "--data-dir", data, "--public-key", sqlite_log.public_key
    )
    assert code == 0, output
    assert f"round {first.round_id} OK" in output


async def test_without_public_keys_the_configured_key_is_used(sqlite_log: Log) -> None:
    code, output = await casino("verify", "audit", "--data-dir", sqlite_log.data_dir)
    assert code == 0, output


async def test_an_unrevealed_round_cannot_be_rederived(sqlite_log: Log) -> None:
    last = sqlite_log.records[-1]
    code, output = await casino("verify", "round", last.round_id, "--data-dir", sqlite_log.data_dir)
    assert code == 1
    assert "not revealed yet" in output
    code, output = await casino(
        "verify", "round", "no-such-round", "--data-dir", sqlite_log.data_dir
    )
    assert code == 1 and "no outcome record" in output


TAMPERING = [
    ("revealed_seed", 2, "SEED_MISMATCH"),
    ("outcome", 3, "HASH_MISMATCH"),
    ("signature", 4, "SIGNATURE_INVALID"),
    ("prev_record_hash", 4, "CHAIN_BROKEN"),
    ("record_hash", 2, "HASH_MISMATCH"),
    ("client_seed", 1, "HASH_MISMATCH"),
    ("created_at_ns", 5, "HASH_MISMATCH"),
]


@pytest.mark.parametrize(("column", "sequence", "failure"), TAMPERING)
async def test_a_changed_byte_fails_verification_naming_the_record(
    sqlite_log: Log, tmp_path: Path, column: str, sequence: int, failure: str
) -> None:
    data = copy_log(sqlite_log, tmp_path / "copy")
    tamper_sqlite(data, sequence, column)
    round_id = sqlite_log.records[sequence - 1].round_id
    key = ("--public-key", sqlite_log.public_key)
    code, output = await casino("verify", "audit", "--data-dir", data, *key)
    assert code == 1, output
    assert f"FAILED at record #{sequence} (round {round_id}): {failure}" in output
    assert f"{sequence - 1} record(s) before it verified" in output
    if column not in ("prev_record_hash", "created_at_ns"):
        code, output = await casino("verify", "round", round_id, "--data-dir", data, *key)
        assert code == 1, output
        assert f"round {round_id} FAILED" in output


async def test_a_log_cut_short_is_detected(sqlite_log: Log, tmp_path: Path) -> None:
    data = copy_log(sqlite_log, tmp_path / "copy")
    with sqlite3.connect(data / "rng.db") as db:
        db.execute("DROP TRIGGER rng_audit_log_no_delete")
        db.execute("DELETE FROM rng_audit_log WHERE sequence = 5")
    key = ("--public-key", sqlite_log.public_key)
    code, output = await casino("verify", "audit", "--data-dir", data, *key)
    assert code == 1, output
    assert sqlite_log.records[-1].round_id in output and "no record" in output


async def test_sqlite_refuses_edits_while_the_triggers_stand(
    sqlite_log: Log, tmp_path: Path
) -> None:
    data = copy_log(sqlite_log, tmp_path / "copy")
    with sqlite3.connect(data / "rng.db") as db:
        for statement in (
            "UPDATE rng_audit_log SET outcome = '0' WHERE sequence = 1",
            "UPDATE rng_audit_log SET revealed_seed = NULL WHERE sequence = 1",
            "UPDATE rng_audit_log SET revealed_seed = 'ab' WHERE sequence = 1",
            "DELETE FROM rng_audit_log WHERE sequence = 5",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only|set once"):
                db.execute(statement)


async def test_unusable_inputs_exit_2(sqlite_log: Log, tmp_path: Path) -> None:
    code, output = await casino("verify", "audit", "--data-dir", tmp_path / "empty")
    assert code == 2 and "cannot load the signing key" in output
    (tmp_path / "bad.pem").write_text("junk")
    code, output = await casino(
        "verify", "audit", "--data-dir", sqlite_log.data_dir, "--public-key", tmp_path / "bad.pem"
    )
    assert code == 2 and "cannot read public key" in output


def asyncpg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.mark.postgres
async def test_on_postgresql_edits_are_refused_and_detected(
    postgres_url: str, tmp_path: Path
) -> None:
    env = {"CASINO_DATABASE_URL": postgres_url}
    async with running_rng(tmp_path / "data", env) as platform:
        records = await play_rounds(platform.addresses["rng_svc"], tmp_path / "public.pem")
    key = ("--database-url", postgres_url, "--public-key", tmp_path / "public.pem")
    code, output = await casino("verify", "audit", *key)
    assert code == 0, output

    db = await asyncpg.connect(asyncpg_url(postgres_url))
    try:
        for statement in (
            "UPDATE rng_audit_log SET outcome = '0' WHERE sequence = 1",
            "UPDATE rng_audit_log SET revealed_seed = NULL WHERE sequence = 1",
            "DELETE FROM rng_audit_log WHERE sequence = 5",
            "TRUNCATE rng_audit_log",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await db.execute(statement)
        await db.execute("ALTER TABLE rng_audit_log DISABLE TRIGGER USER")
        signature = await db.fetchval("SELECT signature FROM rng_audit_log WHERE sequence = 3")
        await db.execute(
            "UPDATE rng_audit_log SET signature = $1 WHERE sequence = 3", flipped(signature)
        )
    finally:
        await db.close()
    code, output = await casino("verify", "audit", *key)
    assert code == 1, output
    assert f"FAILED at record #3 (round {records[2].round_id}): SIGNATURE_INVALID" in output
