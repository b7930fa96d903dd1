"""RNG test fixtures: a SoftHSM2 token in a temp dir, a real rng_svc process, a small client."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from casino.rng.v1 import rng_pb2, rng_service_pb2, rng_service_pb2_grpc
from casino_cli.platform import Platform
from rng_svc.keys import Pkcs11Config

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4711"
SO_PIN = "0815-so"


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 token store private to this test session."""

    conf: Path
    module: str = SOFTHSM_MODULE

    def config(self, token_label: str, key_label: str, pin: str = PIN) -> Pkcs11Config:
        return Pkcs11Config(self.module, token_label, pin, key_label)

    def service_env(self, token_label: str, key_label: str) -> dict[str, str]:
        """What an rng_svc process needs to sign with ``key_label`` on ``token_label``."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "CASINO_RNG_PKCS11_MODULE": self.module,
            "CASINO_RNG_PKCS11_TOKEN_LABEL": token_label,
            "CASINO_RNG_PKCS11_PIN": PIN,
            "CASINO_RNG_PKCS11_KEY_LABEL": key_label,
        }


TOKENS = ("casino-test", "casino-svc", "casino-pin")


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """Tokens in a temp dir through SOFTHSM2_CONF; nothing outside it is touched.

    Fails (never skips) without SoftHSM2: the PKCS#11 path must run wherever tests run.
    """
    util = shutil.which("softhsm2-util")
    assert Path(SOFTHSM_MODULE).exists() and util, (
        f"SoftHSM2 is missing ({SOFTHSM_MODULE}); install it: apt-get install -y softhsm2"
    )
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for label in TOKENS:
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
            env=env,
            check=True,
            capture_output=True,
        )
    # The PKCS#11 library reads SOFTHSM2_CONF once, when this process first loads it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        yield SoftHsm(conf)


@asynccontextmanager
async def running_rng(data_dir: Path, env: Mapping[str, str] = {}) -> AsyncIterator[Platform]:
    """One rng_svc process on a free port, stopped (and checked to exit 0) afterwards."""
    quick_stop = {"CASINO_DRAIN_S": "0.1", "CASINO_GRACE_S": "2"}
    platform = Platform(
        data_dir=data_dir, packages=("rng_svc",), free_ports=True, env={**quick_stop, **env}
    )
    await platform.start(timeout_s=30)
    try:
        yield platform
    finally:
        codes = await platform.stop()
        assert codes == {"rng_svc": 0}


class RngClient:
    """The three mutating calls with game_svc's key scheme, and the reads."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = rng_service_pb2_grpc.RngServiceStub(channel)

    async def commit(
        self, round_id: str, table_id: str = "table-1", key: str | None = None
    ) -> rng_service_pb2.CommitSeedResponse:
        response: rng_service_pb2.CommitSeedResponse = await self.stub.CommitSeed(
            rng_service_pb2.CommitSeedRequest(
                idempotency_key=key or f"commit:{round_id}", round_id=round_id, table_id=table_id
            ),
            timeout=10,
        )
        return response

    async def draw(
        self,
        round_id: str,
        draw: rng_pb2.DrawSpec | None = None,
        client_seed: str = "players-seed",
        key: str | None = None,
    ) -> rng_service_pb2.DrawOutcomeResponse:
        response: rng_service_pb2.DrawOutcomeResponse = await self.stub.DrawOutcome(
            rng_service_pb2.DrawOutcomeRequest(
                idempotency_key=key or f"draw:{round_id}",
                round_id=round_id,
                client_seed=client_seed,
                draw=draw or ROULETTE,
            ),
            timeout=10,
        )
        return response

    async def reveal(
        self, round_id: str, key: str | None = None
    ) -> rng_service_pb2.RevealSeedResponse:
        response: rng_service_pb2.RevealSeedResponse = await self.stub.RevealSeed(
            rng_service_pb2.RevealSeedRequest(
                idempotency_key=key or f"reveal:{round_id}", round_id=round_id
            ),
            timeout=10,
        )
        return response

    async def play(
        self, round_id: str, draw: rng_pb2.DrawSpec | None = None, reveal: bool = True
    ) -> rng_pb2.OutcomeRecord:
        """Commit, draw and (by default) reveal one round; its record as last seen."""
        await self.commit(round_id)
        record = (await self.draw(round_id, draw)).record
        if reveal:
            await self.reveal(round_id)
            record.revealed_seed = (await self.record(round_id)).revealed_seed
        return record

    async def record(self, round_id: str) -> rng_pb2.OutcomeRecord:
        reply: rng_service_pb2.GetOutcomeRecordResponse = await self.stub.GetOutcomeRecord(
            rng_service_pb2.GetOutcomeRecordRequest(round_id=round_id), timeout=10
        )
        return reply.record

    async def public_key(self, key_id: str = "") -> rng_pb2.PublicKey:
        reply: rng_service_pb2.GetPublicKeyResponse = await self.stub.GetPublicKey(
            rng_service_pb2.GetPublicKeyRequest(key_id=key_id), timeout=10
        )
        return reply.public_key

    async def verify(self) -> rng_service_pb2.VerifyAuditLogResponse:
        response: rng_service_pb2.VerifyAuditLogResponse = await self.stub.VerifyAuditLog(
            rng_service_pb2.VerifyAuditLogRequest(), timeout=30
        )
        return response


ROULETTE = rng_pb2.DrawSpec(roulette=rng_pb2.RouletteDraw())


def shuffle(decks: int) -> rng_pb2.DrawSpec:
    return rng_pb2.DrawSpec(shuffle=rng_pb2.ShuffleDraw(decks=decks))


def integers(n: int, count: int) -> rng_pb2.DrawSpec:
    return rng_pb2.DrawSpec(integers=rng_pb2.IntegersDraw(n=n, count=count))


@asynccontextmanager
async def client(address: str) -> AsyncIterator[RngClient]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield RngClient(channel)


@pytest_asyncio.fixture(scope="module")
async def rng_sqlite(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """rng_svc on its embedded default (SQLite, a development key in the data dir)."""
    async with running_rng(tmp_path_factory.mktemp("rng-sqlite")) as platform:
        yield platform
