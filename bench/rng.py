"""RNG: draws and 8-deck shuffles per second, signed outcomes per second (software key vs SoftHSM2).

Measured in-process (the derivation, and derive + hash + sign through each key provider) and
end to end (DrawOutcome against a real rng_svc process on its embedded SQLite, each call
appending a signed record to the audit log). It also writes the raw derivation stream to
``bench/results/rng-stream.bin`` for dieharder; ``python -m bench.rng stream FILE MB``
writes a stream of any size.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc

from bench.harness import RESULTS, Report, percentile
from casino.rng.v1 import rng_pb2, rng_service_pb2, rng_service_pb2_grpc
from casino_cli.platform import Platform
from rng_svc import fairness
from rng_svc.keys import KeyProvider, Pkcs11Config, Pkcs11Key, SoftwareKey, provision_pkcs11_key
from rng_svc.records import GENESIS_HASH, OutcomeRecord

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN, PIN, KEY_LABEL = "casino-bench", "1234", "rng-bench"
STREAM_ROUND, STREAM_CLIENT = "bench-stream", "dieharder"
CONCURRENCY = 16


def rate(work: Callable[[int], object], duration_s: float, runs: int) -> float:
    """Median calls per second of ``work(i)`` over ``runs`` timed runs after a warm-up."""
    for i in range(200):
        work(i)
    rates = []
    counter = itertools.count()
    for _ in range(runs):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < duration_s:
            for _ in range(100):
                work(next(counter))
            done += 100
        rates.append(done / elapsed)
    return statistics.median(rates)


async def signed_outcomes_per_s(signer: KeyProvider, duration_s: float, runs: int) -> float:
    """Derive a roulette outcome, build and hash its record, sign it through ``signer``."""
    seed = fairness.new_server_seed()
    commitment = fairness.commitment_of(seed)

    async def one(i: int) -> None:
        round_id = f"round-{i}"
        record = OutcomeRecord(
            sequence=i + 1,
            round_id=round_id,
            table_id="table-1",
            algorithm=fairness.ALGORITHM,
            commitment=commitment,
            client_seed="bench",
            draw="roulette",
            outcome=str(fairness.roulette(seed, round_id, "bench")),
            created_at_s=1,
            created_at_ns=0,
            key_id=signer.key_id,
            prev_record_hash=GENESIS_HASH,
        ).hashed()
        record.signed(await signer.sign(record.signed_message()))

    for i in range(100):
        await one(i)
    rates = []
    for _ in range(runs):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < duration_s:
            await one(done)
            done += 1
        rates.append(done / elapsed)
    return statistics.median(rates)


@contextlib.contextmanager
def softhsm_token() -> Iterator[Pkcs11Config]:
    """A throw-away SoftHSM2 token with an Ed25519 key, in a temp dir via SOFTHSM2_CONF."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path(SOFTHSM_MODULE).exists():
        raise SystemExit("SoftHSM2 is missing: apt-get install -y softhsm2")
    with tempfile.TemporaryDirectory(prefix="casino-bench-hsm-") as root:
        (Path(root) / "tokens").mkdir()
        conf = Path(root) / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {root}/tokens\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)  # read when the PKCS#11 library loads
        subprocess.run(
            [util, "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", PIN],
            check=True,
            capture_output=True,
        )
        config = Pkcs11Config(SOFTHSM_MODULE, TOKEN, PIN, KEY_LABEL)
        provision_pkcs11_key(config)
        yield config


@contextlib.asynccontextmanager
async def rng_service(data_dir: Path, env: dict[str, str]) -> AsyncIterator[str]:
    platform = Platform(data_dir=data_dir, packages=("rng_svc",), free_ports=True, env=env)
    await platform.start()
    try:
        yield platform.addresses["rng_svc"]
    finally:
        await platform.stop()


async def service_draws(address: str, rounds: int, runs: int) -> tuple[float, float]:
    """DrawOutcome calls per second (median run) and that run's p99 latency in ms."""
    roulette = rng_pb2.DrawSpec(roulette=rng_pb2.RouletteDraw())
    async with grpc.aio.insecure_channel(address) as channel:
        stub = rng_service_pb2_grpc.RngServiceStub(channel)

        async def commit(round_id: str) -> None:
            await stub.CommitSeed(
                rng_service_pb2.CommitSeedRequest(
                    idempotency_key=f"c:{round_id}", round_id=round_id, table_id="bench"
                ),
                timeout=30,
            )

        async def measure(count: int) -> tuple[float, float]:
            round_ids = [str(uuid.uuid4()) for _ in range(count)]
            for first in range(0, count, CONCURRENCY):
                await asyncio.gather(*(commit(r) for r in round_ids[first : first + CONCURRENCY]))
            queue = iter(round_ids)
            latencies: list[float] = []

            async def worker() -> None:
                for round_id in queue:
                    started = time.perf_counter()
                    await stub.DrawOutcome(
                        rng_service_pb2.DrawOutcomeRequest(
                            idempotency_key=f"d:{round_id}",
                            round_id=round_id,
                            client_seed="bench",
                            draw=roulette,
                        ),
                        timeout=30,
                    )
                    latencies.append((time.perf_counter() - started) * 1000)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            return count / (time.perf_counter() - start), percentile(latencies, 0.99)

        await measure(50)  # warm-up
        results = sorted([await measure(rounds) for _ in range(runs)])
        return results[len(results) // 2]


def write_stream(path: Path, size_bytes: int, seed: bytes) -> float:
    """The derivation's byte stream (blocks 0, 1, ...) for one seed; returns MB/s written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = fairness.blocks(seed, STREAM_ROUND, STREAM_CLIENT)
    chunk = 1 << 15  # blocks per write: 1 MiB
    start = time.perf_counter()
    with path.open("wb") as file:
        left = size_bytes // 32
        while left:
            take = min(chunk, left)
            file.write(b"".join(itertools.islice(blocks, take)))
            left -= take
    return size_bytes / 1e6 / (time.perf_counter() - start)


async def main(quick: bool) -> Report:
    report = Report("rng")
    duration, runs, rounds = (0.5, 1, 200) if quick else (2.0, 3, 1000)
    seed = fairness.new_server_seed()

    report.figures["draws_per_s"] = round(
        rate(lambda i: fairness.roulette(seed, f"r{i}", "bench"), duration, runs), 1
    )
    report.figures["shuffles_8deck_per_s"] = round(
        rate(lambda i: fairness.shoe(seed, f"s{i}", "bench", 8), duration, runs), 1
    )

    with tempfile.TemporaryDirectory(prefix="casino-bench-rng-") as tmp, softhsm_token() as hsm:
        software = SoftwareKey.generate(Path(tmp) / "key.pem")
        hardware = Pkcs11Key(hsm)
        try:
            for name, signer in (("software", software), ("softhsm", hardware)):
                figure = await signed_outcomes_per_s(signer, duration, runs)
                report.figures[f"signed_outcomes_per_s_{name}"] = round(figure, 1)
        finally:
            hardware.close()
        backends = {
            "software": {"CASINO_RNG_KEY_FILE": str(Path(tmp) / "key.pem")},
            "softhsm": {
                "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"],
                "CASINO_RNG_PKCS11_MODULE": hsm.module,
                "CASINO_RNG_PKCS11_TOKEN_LABEL": hsm.token_label,
                "CASINO_RNG_PKCS11_PIN": hsm.pin,
                "CASINO_RNG_PKCS11_KEY_LABEL": hsm.key_label,
            },
        }
        for name, env in backends.items():
            async with rng_service(Path(tmp) / name, env) as address:
                per_s, p99 = await service_draws(address, rounds, runs)
            report.figures[f"service_draws_per_s_{name}_c{CONCURRENCY}"] = round(per_s, 1)
            report.figures[f"service_draw_p99_ms_{name}_c{CONCURRENCY}"] = round(p99, 2)

    stream_mb = 8 if quick else 128
    stream = RESULTS / "rng-stream.bin"
    report.figures["stream_mb_per_s"] = round(write_stream(stream, stream_mb << 20, seed), 1)
    report.figures["stream_mb"] = float(stream_mb)
    report.notes += [
        "draws: roulette, a fresh round id per draw; signed outcomes in-process: derive + "
        "record hash + Ed25519 signature through the key provider (PKCS#11 calls go through "
        "a worker thread, as in the service)",
        f"service: DrawOutcome on a real rng_svc process, embedded SQLite, {CONCURRENCY} "
        "concurrent callers; each call appends one signed record in its own transaction",
        f"stream: {stream} = derivation blocks 0.. for round id {STREAM_ROUND!r}, client seed "
        f"{STREAM_CLIENT!r}, server seed {seed.hex()}; dieharder -a -g 201 -f {stream}",
    ]
    return report


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "stream":
        raise SystemExit("usage: python -m bench.rng stream FILE MEGABYTES")
    stream_seed = fairness.new_server_seed()
    print(f"server seed {stream_seed.hex()}", file=sys.stderr)
    try:
        speed = write_stream(Path(sys.argv[2]), int(sys.argv[3]) << 20, stream_seed)
    except BrokenPipeError:  # a pipe reader (dieharder -g 200) had enough
        sys.stderr.close()
        raise SystemExit(0) from None
    print(f"wrote {sys.argv[3]} MiB at {speed:.1f} MB/s", file=sys.stderr)
