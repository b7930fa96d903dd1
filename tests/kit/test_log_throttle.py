"""The throttle that keeps an outage from writing a log line per call."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from casino_kit.errors import Unavailable
from casino_kit.logs import Throttle
from casino_kit.redis_errors import unreachable_is_unavailable


def test_one_line_per_period_and_the_count_of_those_held_back() -> None:
    moments = iter([0.0, 0.0, 1.0, 9.99, 10.0, 15.0, 100.0, 100.0])
    throttle = Throttle(every_s=10.0, clock=lambda: next(moments))
    passed = [throttle.passes() for _ in range(8)]
    assert passed == [0, None, None, None, 3, None, 1, None]


def test_a_redis_outage_logs_once_not_once_per_call() -> None:
    with capture_logs() as logs:
        for _ in range(50):
            with pytest.raises(Unavailable), unreachable_is_unavailable("a test store"):
                raise RedisConnectionError("connection refused")
    warnings = [line for line in logs if line["event"] == "a test store unreachable"]
    assert len(warnings) == 1
