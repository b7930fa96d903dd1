"""What an unreachable Redis looks like to a service's callers.

A refused, reset or timed-out connection means the command may not have run: the caller
gets UNAVAILABLE with ``STORAGE_UNAVAILABLE`` and retries (with its idempotency key where
the call changes something), never an INTERNAL error with a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from casino_kit.errors import Unavailable
from casino_kit.logs import Throttle, get_logger

LOST = (RedisConnectionError, RedisTimeoutError, OSError)
"""The errors of a Redis that cannot be reached (as opposed to one that refused a command)."""

log = get_logger(__name__)
_warnings: dict[str, Throttle] = {}


@contextlib.contextmanager
def unreachable_is_unavailable(what: str) -> Iterator[None]:
    """Turn a lost Redis inside the block into ``Unavailable``; ``what`` names the store."""
    try:
        yield
    except LOST as error:
        held = _warnings.setdefault(what, Throttle(every_s=10.0)).passes()
        if held is not None:
            log.warning(f"{what} unreachable", error=str(error), not_logged_since_last=held)
        raise Unavailable("STORAGE_UNAVAILABLE", f"{what} is unreachable") from error
