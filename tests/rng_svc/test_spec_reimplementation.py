"""An independent implementation of docs/fairness.md, written from the document alone.

Nothing from ``rng_svc`` is imported here: the derivation, the record preimage and the
signature check below follow the document's words. They must reproduce the document's test
vectors and the outcomes and records a real ``rng_svc`` process produces.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from casino.rng.v1 import rng_pb2, rng_service_pb2, rng_service_pb2_grpc
from casino_cli.platform import Platform

DOC = Path(__file__).parents[2] / "docs" / "fairness.md"


# --- The derivation, sections 3 to 6 ------------------------------------------------------


def words(server_seed: bytes, round_id: str, client_seed: str) -> Iterator[int]:
    k = 0
    while True:
        message = f"{client_seed}:{round_id}:{k}".encode("ascii")
        block = hmac.new(server_seed, message, hashlib.sha256).digest()
        for offset in range(0, 32, 4):
            yield int.from_bytes(block[offset : offset + 4], "big")
        k += 1


def uniform(stream: Iterator[int], n: int) -> int:
    limit = 2**32 - (2**32 % n)
    while True:
        w = next(stream)
        if w < limit:
            return w % n


def outcome(draw: str, server_seed: bytes, round_id: str, client_seed: str) -> list[int]:
    stream = words(server_seed, round_id, client_seed)
    kind, *args = draw.split(":")
    if kind == "roulette":
        return [uniform(stream, 37)]
    if kind == "shuffle":
        cards = list(range(52 * int(args[0])))
        for i in range(len(cards) - 1, 0, -1):
            j = uniform(stream, i + 1)
            cards[i], cards[j] = cards[j], cards[i]
        return cards
    n, count = int(args[0]), int(args[1])
    return [uniform(stream, n) for _ in range(count)]


# --- The record, sections 8 and 9 ---------------------------------------------------------


def preimage(fields: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in ["casino-rng-record-v1", *fields]).encode("ascii")


def key_id(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:32]


# --- The document's vectors ---------------------------------------------------------------


def vectors() -> dict[str, str]:
    """Section 7's block as name -> value text (continuation lines joined)."""
    text = DOC.read_text()
    block = text.split("## 7. Test vectors", 1)[1].split("```", 2)[1]
    found: dict[str, str] = {}
    last = ""
    for line in block.splitlines():
        if not line.strip():
            continue
        if line.startswith(" "):
            found[last] += " " + line.strip()
            continue
        name, value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        found[name], last = value, name
    return found


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split()]


def test_the_document_vectors_reproduce() -> None:
    v = vectors()
    seed = bytes.fromhex(v["server_seed"])
    round_id, client_seed = v["round_id"], v["client_seed"]
    assert hashlib.sha256(seed).hexdigest() == v["commitment"]
    assert v["message_0"] == f"{client_seed}:{round_id}:0"
    stream = words(seed, round_id, client_seed)
    assert [next(stream) for _ in range(8)] == numbers(v["words 0-7"])
    block1 = hmac.new(seed, f"{client_seed}:{round_id}:1".encode(), hashlib.sha256).digest()
    assert block1.hex() == v["block_1"]
    assert outcome("roulette", seed, round_id, client_seed) == numbers(v["roulette"])
    assert outcome("shuffle:1", seed, round_id, client_seed) == numbers(v["shuffle:1"])
    shoe8 = outcome("shuffle:8", seed, round_id, client_seed)
    assert shoe8[:10] == numbers(v["shuffle:8 (first 10)"])
    assert outcome("integers:6:10", seed, round_id, client_seed) == numbers(v["integers:6:10"])
    big = "integers:3221225472:5"
    assert outcome(big, seed, round_id, client_seed) == numbers(v[big])


def test_the_document_record_example_reproduces() -> None:
    text = DOC.read_text()
    section = text.split("## 8. The audit record", 1)[1]
    record_hash = re.search(r"record_hash\s+([0-9a-f]{64})", section)
    signature = re.search(r"signature\s+([0-9a-f]{64})\s+([0-9a-f]{64})", section)
    assert record_hash is not None and signature is not None
    private = Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"casino-rng example key").digest()
    )
    raw = private.public_key().public_bytes_raw()
    assert key_id(raw) == "413f75db04341d9a70b1a76dfff8098c"
    v = vectors()
    seed = bytes.fromhex(v["server_seed"])
    fields = [
        "1",
        v["round_id"],
        "table-roulette-1",
        "FAIRNESS_ALGORITHM_HMAC_SHA256_V1",
        v["commitment"],
        v["client_seed"],
        "roulette",
        ",".join(map(str, outcome("roulette", seed, v["round_id"], v["client_seed"]))),
        "1795310000.123000000",
        key_id(raw),
        "0" * 64,
    ]
    digest = hashlib.sha256(preimage(fields)).hexdigest()
    assert digest == record_hash.group(1)
    Ed25519PublicKey.from_public_bytes(raw).verify(
        bytes.fromhex(signature.group(1) + signature.group(2)), bytes.fromhex(digest)
    )


# --- Against the real service --------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def rng(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    platform = Platform(
        data_dir=tmp_path_factory.mktemp("spec"), packages=("rng_svc",), free_ports=True
    )
    await platform.start()
    yield platform.addresses["rng_svc"]
    await platform.stop()


DRAWS = {
    "roulette": rng_pb2.DrawSpec(roulette=rng_pb2.RouletteDraw()),
    "shuffle:8": rng_pb2.DrawSpec(shuffle=rng_pb2.ShuffleDraw(decks=8)),
    "shuffle:1": rng_pb2.DrawSpec(shuffle=rng_pb2.ShuffleDraw(decks=1)),
    "integers:1000000007:200": rng_pb2.DrawSpec(
        integers=rng_pb2.IntegersDraw(n=1000000007, count=200)
    ),
    "integers:4294967295:50": rng_pb2.DrawSpec(
        integers=rng_pb2.IntegersDraw(n=4294967295, count=50)
    ),
}


@pytest.mark.parametrize("draw", list(DRAWS))
async def test_service_outcomes_rederive_from_the_document(rng: str, draw: str) -> None:
    round_id, table_id = str(uuid.uuid4()), "table-7"
    client_seed = hashlib.sha256(b"bet-1,bet-2," + round_id.encode()).hexdigest()
    async with grpc.aio.insecure_channel(rng) as channel:
        stub = rng_service_pb2_grpc.RngServiceStub(channel)
        committed = await stub.CommitSeed(
            rng_service_pb2.CommitSeedRequest(
                idempotency_key=f"commit:{round_id}", round_id=round_id, table_id=table_id
            )
        )
        drawn = await stub.DrawOutcome(
            rng_service_pb2.DrawOutcomeRequest(
                idempotency_key=f"draw:{round_id}",
                round_id=round_id,
                client_seed=client_seed,
                draw=DRAWS[draw],
            )
        )
        proof = (
            await stub.RevealSeed(
                rng_service_pb2.RevealSeedRequest(
                    idempotency_key=f"reveal:{round_id}", round_id=round_id
                )
            )
        ).proof
        key = (await stub.GetPublicKey(rng_service_pb2.GetPublicKeyRequest())).public_key

    seed = bytes.fromhex(proof.server_seed)
    assert hashlib.sha256(seed).hexdigest() == committed.commitment.commitment == proof.commitment
    derived = outcome(draw, seed, round_id, client_seed)
    assert list(proof.outcome) == derived == list(drawn.outcome)

    record = drawn.record
    fields = [
        str(record.sequence),
        round_id,
        table_id,
        "FAIRNESS_ALGORITHM_HMAC_SHA256_V1",
        proof.commitment,
        client_seed,
        draw,
        ",".join(map(str, derived)),
        f"{record.created_at.seconds}.{record.created_at.nanos:09d}",
        key_id(key.raw),
        record.prev_record_hash,
    ]
    digest = hashlib.sha256(preimage(fields)).hexdigest()
    assert digest == record.record_hash == proof.audit_record_hash
    assert key.key_id == proof.public_key_id == key_id(key.raw)
    Ed25519PublicKey.from_public_bytes(key.raw).verify(proof.signature, bytes.fromhex(digest))
