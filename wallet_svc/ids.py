"""Time-ordered 63-bit ids for accounts, transfers and postings, made in the process.

Ids are needed before the write (the response that is stored with the effect names them), so
the database cannot hand them out. Layout (snowflake): 41 bits of milliseconds since 2024,
10 bits of a random node number, 12 bits of a per-millisecond sequence. They sort in creation
order within a process and roughly by time across processes; a collision between two
replicas that drew the same node number is a unique violation, and the batch is retried with
fresh ids.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1


class IdGenerator:
    """Monotonic ids; ``clock_ms`` is injectable so tests can pin time."""

    def __init__(self, node: int | None = None, clock_ms: Callable[[], int] | None = None) -> None:
        self._node = secrets.randbelow(1 << NODE_BITS) if node is None else node
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._last_ms = 0
        self._sequence = 0

    def __call__(self) -> int:
        now = max(self._clock_ms() - EPOCH_MS, self._last_ms)
        if now == self._last_ms:
            self._sequence += 1
            if self._sequence > MAX_SEQUENCE:  # 4096 ids in one ms: borrow the next ms
                now += 1
                self._sequence = 0
        else:
            self._sequence = 0
        self._last_ms = now
        return (now << (NODE_BITS + SEQUENCE_BITS)) | (self._node << SEQUENCE_BITS) | self._sequence
