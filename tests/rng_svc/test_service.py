"""RngService over gRPC against real rng_svc processes: SQLite, PostgreSQL, SoftHSM2."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path

import grpc
import pytest

from casino.common.v1 import common_pb2
from casino.rng.v1 import rng_pb2, rng_service_pb2
from casino_cli.platform import Platform, StartError
from casino_kit.errors import details_of
from rng_svc.keys import SoftwareKey, key_id_of, provision_pkcs11_key, verify_signature
from tests.rng_svc.conftest import (
    RngClient,
    SoftHsm,
    client,
    integers,
    running_rng,
    shuffle,
)


def new_round() -> str:
    return str(uuid.uuid4())


async def expect_error(call: object, code: grpc.StatusCode, reason: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    details = details_of(raised.value)
    assert (details.code, details.reason) == (code, reason), details
    return details.metadata


def assert_signed(record: rng_pb2.OutcomeRecord, public_key: rng_pb2.PublicKey) -> None:
    assert record.key_id == public_key.key_id == key_id_of(public_key.raw)
    assert verify_signature(public_key.raw, record.signature, bytes.fromhex(record.record_hash))


async def test_a_round_commits_draws_and_reveals(rng_sqlite: Platform) -> None:
    round_id = new_round()
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        committed = (await rng.commit(round_id, table_id="roulette-9")).commitment
        assert committed.round_id == round_id and len(committed.commitment) == 64
        assert committed.algorithm == 1 and committed.seed_id
        drawn = await rng.draw(round_id, client_seed="bets-hash")
        assert list(drawn.outcome) == list(drawn.record.outcome)
        assert 0 <= drawn.outcome[0] <= 36
        assert drawn.record.revealed_seed == ""
        assert drawn.record.commitment == committed.commitment
        assert drawn.record.table_id == "roulette-9"
        assert_signed(drawn.record, await rng.public_key())

        proof = (await rng.reveal(round_id)).proof
        seed = bytes.fromhex(proof.server_seed)
        assert hashlib.sha256(seed).hexdigest() == committed.commitment
        assert list(proof.outcome) == list(drawn.outcome)
        assert proof.audit_record_hash == drawn.record.record_hash
        assert proof.client_seed == "bets-hash"

        stored = await rng.record(round_id)
        assert stored.revealed_seed == proof.server_seed
        stored.revealed_seed = ""
        assert stored == drawn.record
        verdict = await rng.verify()
        assert verdict.ok and verdict.checked_count >= 1


async def test_a_repeated_commit_returns_the_first_answer(rng_sqlite: Platform) -> None:
    round_id = new_round()
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        first = await rng.commit(round_id)
        again = await rng.commit(round_id)
        assert again.SerializeToString() == first.SerializeToString()


async def test_a_second_commitment_for_a_round_is_refused(rng_sqlite: Platform) -> None:
    round_id = new_round()
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        first = await rng.commit(round_id)
        metadata = await expect_error(
            rng.commit(round_id, key="another-key"),
            grpc.StatusCode.ALREADY_EXISTS,
            "SEED_ALREADY_COMMITTED",
        )
        assert metadata["round_id"] == round_id
        assert metadata["commitment"] == first.commitment.commitment
        # The refused request changed nothing: the first key still answers the first seed,
        # and the refused key is still free.
        assert (await rng.commit(round_id)) == first
        other = new_round()
        assert (await rng.commit(other, key="another-key")).commitment.round_id == other


async def test_an_idempotency_key_is_bound_to_its_request(rng_sqlite: Platform) -> None:
    round_id = new_round()
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        await rng.commit(round_id, key=f"k-{round_id}")
        await expect_error(
            rng.commit(new_round(), key=f"k-{round_id}"),
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
        )
        await expect_error(
            rng.commit(round_id, table_id="other-table", key=f"k-{round_id}"),
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
        )


async def test_a_seed_is_not_revealed_before_the_outcome_is_drawn(rng_sqlite: Platform) -> None:
    round_id = new_round()
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        await expect_error(rng.reveal(round_id), grpc.StatusCode.NOT_FOUND, "ROUND_NOT_FOUND")
        committed = await rng.commit(round_id)
        metadata = await expect_error(
            rng.reveal(round_id), grpc.StatusCode.FAILED_PRECONDITION, "OUTCOME_NOT_DRAWN"
        )
        assert metadata == {"round_id": round_id}
        await expect_error(
            rng.record(round_id), grpc.StatusCode.FAILED_PRECONDITION, "OUTCOME_NOT_DRAWN"
        )
        # Once drawn, the same reveal request succeeds, and a repeat answers the same proof.
        await rng.draw(round_id)
        proof = (await rng.reveal(round_id)).proof
        seed = bytes.fromhex(proof.server_seed)
        assert hashlib.sha256(seed).hexdigest() == committed.commitment.commitment
        assert (await rng.reveal(round_id)).proof == proof


async def test_a_round_is_drawn_once(rng_sqlite: Platform) -> None:
    round_id = new_round()
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        await expect_error(
            rng.draw(round_id), grpc.StatusCode.FAILED_PRECONDITION, "SEED_NOT_COMMITTED"
        )
        await rng.commit(round_id)
        first = await rng.draw(round_id, shuffle(8), client_seed="seed-a")
        assert sorted(first.outcome) == list(range(416))
        again = await rng.draw(round_id, shuffle(8), client_seed="seed-a")
        assert again.SerializeToString() == first.SerializeToString()
        # Fishing for another outcome with another client seed or draw is refused.
        await expect_error(
            rng.draw(round_id, shuffle(8), client_seed="seed-b", key="fishing"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "OUTCOME_ALREADY_DRAWN",
        )
        await expect_error(
            rng.draw(round_id, shuffle(6), client_seed="seed-a"),
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
        )
        assert await rng.record(round_id) == first.record


BAD_REQUESTS = [
    (
        "CommitSeed",
        rng_service_pb2.CommitSeedRequest(),
        {"idempotency_key", "round_id", "table_id"},
    ),
    (
        "CommitSeed",
        rng_service_pb2.CommitSeedRequest(
            idempotency_key="k",
            round_id="r\n1",
            table_id="t" * 129,
            algorithm=common_pb2.FairnessAlgorithm.ValueType(7),  # not in the contract
        ),
        {"round_id", "table_id", "algorithm"},
    ),
    (
        "DrawOutcome",
        rng_service_pb2.DrawOutcomeRequest(idempotency_key="k", round_id="r"),
        {"client_seed", "draw"},
    ),
    (
        "DrawOutcome",
        rng_service_pb2.DrawOutcomeRequest(
            idempotency_key="k", round_id="r", client_seed="c", draw=shuffle(9)
        ),
        {"draw.shuffle.decks"},
    ),
    (
        "DrawOutcome",
        rng_service_pb2.DrawOutcomeRequest(
            idempotency_key="k", round_id="r", client_seed="é", draw=integers(1, 0)
        ),
        {"client_seed", "draw.integers.n"},
    ),
    ("RevealSeed", rng_service_pb2.RevealSeedRequest(round_id="r"), {"idempotency_key"}),
    ("GetOutcomeRecord", rng_service_pb2.GetOutcomeRecordRequest(), {"round_id"}),
]


@pytest.mark.parametrize(("method", "request_", "fields"), BAD_REQUESTS)
async def test_bad_input_is_refused_with_every_field_named(
    rng_sqlite: Platform, method: str, request_: object, fields: set[str]
) -> None:
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        before = await rng.verify()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await getattr(rng.stub, method)(request_, timeout=10)
        details = details_of(raised.value)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert {v.field for v in details.violations} == fields
        after = await rng.verify()
        assert after.checked_count == before.checked_count


async def test_a_bad_commit_leaves_no_seed(rng_sqlite: Platform) -> None:
    round_id = new_round()
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        with pytest.raises(grpc.aio.AioRpcError):
            await rng.commit(round_id, table_id="")
        await expect_error(
            rng.draw(round_id), grpc.StatusCode.FAILED_PRECONDITION, "SEED_NOT_COMMITTED"
        )


async def test_public_keys(rng_sqlite: Platform, tmp_path: Path) -> None:
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        current = await rng.public_key()
        assert len(current.raw) == 32 and current.algorithm == 1
        assert current.pem.startswith("-----BEGIN PUBLIC KEY-----")
        assert not current.HasField("retired_at")
        assert await rng.public_key(current.key_id) == current
        # The development key the service generated is the one in its data dir.
        dev_key = SoftwareKey.load(rng_sqlite.data_dir / "rng_signing_key.pem")
        assert dev_key.public_key == current.raw
        await expect_error(rng.public_key("0" * 32), grpc.StatusCode.NOT_FOUND, "KEY_NOT_FOUND")


async def check_chain(rng: RngClient, round_ids: list[str]) -> None:
    """The records of ``round_ids`` have distinct sequences, and the whole log verifies."""
    records = [await rng.record(r) for r in round_ids]
    sequences = sorted(r.sequence for r in records)
    assert len(set(sequences)) == len(records)
    verdict = await rng.verify()
    assert verdict.ok, verdict
    assert verdict.checked_count >= sequences[-1]


async def test_a_range_of_the_log_verifies_on_its_own(rng_sqlite: Platform) -> None:
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        records = [await rng.play(new_round(), reveal=False) for _ in range(3)]
        first, last = records[0].sequence, records[-1].sequence
        verdict = await rng.stub.VerifyAuditLog(
            rng_service_pb2.VerifyAuditLogRequest(from_sequence=first + 1, to_sequence=last),
            timeout=10,
        )
        assert verdict.ok and verdict.checked_count == 2
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await rng.stub.VerifyAuditLog(
                rng_service_pb2.VerifyAuditLogRequest(from_sequence=last, to_sequence=first),
                timeout=10,
            )
        assert details_of(raised.value).violations[0].field == "to_sequence"


async def test_concurrent_draws_do_not_fork_the_chain(rng_sqlite: Platform) -> None:
    round_ids = [new_round() for _ in range(40)]
    async with client(rng_sqlite.addresses["rng_svc"]) as rng:
        await asyncio.gather(*(rng.commit(r) for r in round_ids))
        await asyncio.gather(*(rng.draw(r) for r in round_ids))
        await asyncio.gather(*(rng.draw(r) for r in round_ids[:10]))  # retries interleaved
        await check_chain(rng, round_ids)


@pytest.mark.postgres
async def test_on_postgresql_two_replicas_share_one_unforked_chain(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two rng_svc processes on one database race to append; neither forks the chain."""
    key = SoftwareKey.generate(tmp_path / "key.pem")
    env = {"CASINO_DATABASE_URL": postgres_url, "CASINO_RNG_KEY_FILE": str(tmp_path / "key.pem")}
    async with (
        running_rng(tmp_path / "a", env) as first,
        running_rng(tmp_path / "b", env) as second,
        client(first.addresses["rng_svc"]) as a,
        client(second.addresses["rng_svc"]) as b,
    ):
        round_ids = [new_round() for _ in range(30)]
        await asyncio.gather(*(a.commit(r) for r in round_ids))
        # The same rounds drawn through both replicas at once: one record per round.
        drawn = await asyncio.gather(
            *(a.draw(r) for r in round_ids), *(b.draw(r) for r in round_ids)
        )
        by_round = {d.record.round_id: d.record for d in drawn[:30]}
        assert all(by_round[d.record.round_id] == d.record for d in drawn[30:])
        await asyncio.gather(*(b.reveal(r) for r in round_ids[:10]))
        await check_chain(a, round_ids)
        assert (await b.verify()).checked_count == 30
        assert (await a.public_key()).raw == key.public_key
        # A second commitment through the other replica is refused there too.
        await expect_error(
            b.commit(round_ids[0], key="other"),
            grpc.StatusCode.ALREADY_EXISTS,
            "SEED_ALREADY_COMMITTED",
        )


async def test_a_new_key_retires_the_old_one_and_old_records_still_verify(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with running_rng(data_dir) as platform, client(platform.addresses["rng_svc"]) as rng:
        old_record = await rng.play(new_round())
        old_key = await rng.public_key()
    SoftwareKey.generate(tmp_path / "new.pem")
    env = {"CASINO_RNG_KEY_FILE": str(tmp_path / "new.pem")}
    async with (
        running_rng(data_dir, env) as platform,
        client(platform.addresses["rng_svc"]) as rng,
    ):
        new_record = await rng.play(new_round())
        new_key = await rng.public_key()
        assert new_key.key_id != old_key.key_id
        assert new_record.sequence == old_record.sequence + 1
        assert new_record.prev_record_hash == old_record.record_hash
        retired = await rng.public_key(old_key.key_id)
        assert retired.HasField("retired_at") and retired.raw == old_key.raw
        assert_signed(old_record, retired)
        assert_signed(new_record, new_key)
        assert (await rng.verify()).ok


async def test_signing_in_softhsm(softhsm: SoftHsm, tmp_path: Path) -> None:
    public = provision_pkcs11_key(softhsm.config("casino-svc", "rng-signing"))
    env = softhsm.service_env("casino-svc", "rng-signing")
    async with running_rng(tmp_path, env) as platform, client(platform.addresses["rng_svc"]) as rng:
        key = await rng.public_key()
        assert key.raw == public
        records = [await rng.play(new_round(), draw) for draw in (None, shuffle(8))]
        for record in records:
            assert_signed(record, key)
        assert (await rng.verify()).ok
    assert not (tmp_path / "rng_signing_key.pem").exists()


async def test_a_missing_hsm_key_stops_the_service(softhsm: SoftHsm, tmp_path: Path) -> None:
    env = softhsm.service_env("casino-svc", "no-such-key")
    platform = Platform(data_dir=tmp_path, packages=("rng_svc",), free_ports=True, env=env)
    with pytest.raises(StartError, match="rng_svc exited"):
        await platform.start(timeout_s=30)
    log = next((tmp_path / "logs").glob("rng_svc-*.log")).read_text()
    assert "no-such-key" in log
