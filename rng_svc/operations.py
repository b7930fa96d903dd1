"""One method per RPC: the round rules applied to storage, with signing in between.

Writes are serialised twice over: an in-process lock (one writer per replica, which also
keeps SQLite free of lock-upgrade failures) and the database's unique constraints (two
replicas racing on PostgreSQL: the loser's insert fails, it re-reads and decides again on
the new state). So the audit chain never forks and a round never gets two seeds.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from casino_kit.errors import FailedPrecondition, NotFound
from casino_kit.logs import get_logger
from rng_svc import fairness, keys, rounds, store, verify
from rng_svc.records import GENESIS_HASH, OutcomeRecord
from rng_svc.rounds import Round, State

log = get_logger(__name__)
R = TypeVar("R")
T = TypeVar("T")

RETRIES = 5


class IntegrityFailure(RuntimeError):
    """Stored state contradicts itself (a seed that misses its commitment): never serve it."""


def uuid7(now_ns: int) -> str:
    """A UUIDv7 (RFC 9562): sortable by creation time, as the platform's ids are."""
    value = (now_ns // 1_000_000) << 80 | int.from_bytes(os.urandom(10)) & ((1 << 80) - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))


@dataclass(frozen=True)
class Revealed:
    round: Round
    record: OutcomeRecord


class Operations:
    """Commit, draw, reveal and the reads, over one engine and one key provider."""

    def __init__(
        self,
        engine: AsyncEngine,
        signer: keys.KeyProvider,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.clock = clock
        self._write_lock = asyncio.Lock()

    async def register_key(self) -> None:
        """Record the provider's public key as the current one (GetPublicKey serves it)."""
        now = self.clock()
        info = store.KeyInfo(
            key_id=self.signer.key_id,
            algorithm=keys.ALGORITHM,
            public_key=self.signer.public_key,
            created_at_s=now // 1_000_000_000,
            created_at_ns=now % 1_000_000_000,
        )
        for _ in range(RETRIES):
            try:
                async with self.engine.begin() as connection:
                    await store.register_key(connection, info)
                return
            except IntegrityError:
                continue  # another replica registered it at the same moment

    async def commit(self, request: rounds.CommitRequest) -> Round:
        rounds.check_commit(request)
        return await self._serialised(self._commit_once, request)

    async def _commit_once(self, request: rounds.CommitRequest) -> Round:
        async with self.engine.begin() as connection:
            by_key = await store.round_by_key(connection, "commit_key", request.idempotency_key)
            by_round = await store.round_by_id(connection, request.round_id)
            earlier = rounds.decide_commit(request, by_key, by_round)
            if earlier is not None:
                return earlier
            seed = await self.signer.random_bytes(fairness.SEED_BYTES)
            now = self.clock()
            new = Round(
                round_id=request.round_id,
                table_id=request.table_id,
                seed_id=uuid7(now),
                algorithm=request.algorithm,
                commitment=fairness.commitment_of(seed),
                server_seed=seed,
                committed_at_s=now // 1_000_000_000,
                committed_at_ns=now % 1_000_000_000,
                commit_key=request.idempotency_key,
            )
            await store.insert_round(connection, new)
        log.info("seed committed", round_id=new.round_id, commitment=new.commitment)
        return new

    async def _serialised(self, once: Callable[[R], Awaitable[T]], request: R) -> T:
        """Run one write under the replica's lock, again when another replica won a race."""
        async with self._write_lock:
            for _ in range(RETRIES):
                try:
                    return await once(request)
                except IntegrityError:
                    # Another writer got there first: decide again on its result.
                    log.info("write conflict, deciding again", operation=once.__name__)
        raise RuntimeError(f"gave up after {RETRIES} write conflicts")

    async def draw(self, request: rounds.DrawRequest) -> OutcomeRecord:
        rounds.check_draw(request)
        return await self._serialised(self._draw_once, request)

    async def _draw_once(self, request: rounds.DrawRequest) -> OutcomeRecord:
        assert request.draw is not None
        async with self.engine.begin() as connection:
            await store.lock_chain(connection)
            round_ = await store.round_by_id(connection, request.round_id)
            owner = await store.round_by_key(connection, "draw_key", request.idempotency_key)
            record = await store.record_by_round(connection, request.round_id)
            earlier = rounds.decide_draw(
                request, round_, record, None if owner is None else owner.round_id
            )
            if earlier is not None:
                return earlier
            assert round_ is not None
            _check_seed(round_)
            outcome = fairness.derive(
                request.draw, round_.server_seed, round_.round_id, request.client_seed
            )
            last = await store.head(connection)
            sequence, prev_hash = (1, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
            now = self.clock()
            unsigned = OutcomeRecord(
                sequence=sequence,
                round_id=round_.round_id,
                table_id=round_.table_id,
                algorithm=round_.algorithm,
                commitment=round_.commitment,
                client_seed=request.client_seed,
                draw=request.draw.text(),
                outcome=",".join(map(str, outcome)),
                created_at_s=now // 1_000_000_000,
                created_at_ns=now % 1_000_000_000,
                key_id=self.signer.key_id,
                prev_record_hash=prev_hash,
            )
            hashed = unsigned.hashed()
            record = hashed.signed(await self.signer.sign(hashed.signed_message()))
            await store.append(connection, record)
            drawn = round_.advanced(State.DRAWN, key=request.idempotency_key)
            await store.save_state(connection, drawn, State.COMMITTED)
        log.info("outcome drawn", round_id=record.round_id, sequence=record.sequence)
        return record

    async def reveal(self, request: rounds.RevealRequest) -> Revealed:
        rounds.check_reveal(request)
        return await self._serialised(self._reveal_once, request)

    async def _reveal_once(self, request: rounds.RevealRequest) -> Revealed:
        async with self.engine.begin() as connection:
            round_ = await store.round_by_id(connection, request.round_id)
            owner = await store.round_by_key(connection, "reveal_key", request.idempotency_key)
            reveal_now = rounds.decide_reveal(
                request, round_, None if owner is None else owner.round_id
            )
            assert round_ is not None
            record = await store.record_by_round(connection, request.round_id)
            if record is None:
                raise IntegrityFailure(f"drawn round {round_.round_id} has no audit record")
            if reveal_now:
                _check_seed(round_)
                seed_hex = round_.server_seed.hex()
                await store.set_revealed(connection, round_.round_id, seed_hex)
                revealed = round_.advanced(State.REVEALED, key=request.idempotency_key)
                await store.save_state(connection, revealed, State.DRAWN)
                record, round_ = record.revealed(seed_hex), revealed
                log.info("seed revealed", round_id=round_.round_id)
        return Revealed(round_, record)

    async def record(self, round_id: str) -> OutcomeRecord:
        async with self.engine.connect() as connection:
            record = await store.record_by_round(connection, round_id)
            if record is not None:
                return record
            if await store.round_by_id(connection, round_id) is None:
                raise NotFound("ROUND_NOT_FOUND", "no such round", metadata={"round_id": round_id})
        raise FailedPrecondition(
            "OUTCOME_NOT_DRAWN",
            "the round's outcome is not drawn yet",
            metadata={"round_id": round_id},
        )

    async def key(self, key_id: str) -> store.KeyInfo:
        async with self.engine.connect() as connection:
            known = await store.keys(connection)
        wanted = key_id or self.signer.key_id
        for info in known:
            if info.key_id == wanted:
                return info
        raise NotFound("KEY_NOT_FOUND", "no signing key with that id", metadata={"key_id": key_id})

    async def trusted_keys(self) -> dict[str, bytes]:
        """The current provider's key, and the earlier keys this database registered."""
        async with self.engine.connect() as connection:
            known = {k.key_id: k.public_key for k in await store.keys(connection)}
        return {**known, self.signer.key_id: self.signer.public_key}

    async def verify(self, from_sequence: int, to_sequence: int) -> verify.Verdict:
        public_keys = await self.trusted_keys()
        first = max(from_sequence, 1)
        async with self.engine.connect() as connection:
            prev_hash = GENESIS_HASH
            if first > 1:
                anchor = await store.record_hash_at(connection, first - 1)
                prev_hash = anchor if anchor is not None else GENESIS_HASH
            verifier = verify.ChainVerifier(public_keys, first_sequence=first, prev_hash=prev_hash)
            async for record in store.records(connection, first, to_sequence):
                if not verifier.feed(record):
                    break
        return verifier.verdict()


def _check_seed(round_: Round) -> None:
    """Never draw from or reveal a stored seed that no longer matches its commitment."""
    if fairness.commitment_of(round_.server_seed) != round_.commitment:
        log.error("stored seed does not match its commitment", round_id=round_.round_id)
        raise IntegrityFailure(f"round {round_.round_id}: stored seed misses its commitment")
