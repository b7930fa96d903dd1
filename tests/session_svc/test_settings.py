"""A session_svc that cannot run safely refuses to start, in one line naming the variable."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.conftest import REDIS_URL


async def start_fails(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "session_svc",
        env={**os.environ, "CASINO_PORT": "0", "CASINO_INSECURE": "1", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, output.decode()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CASINO_REDIS_URL": REDIS_URL}, "CASINO_SESSION_KEY is required"),
        ({"CASINO_SESSION_KEY": "c2hvcnQ"}, "CASINO_SESSION_KEY needs at least 32 bytes"),
        ({"CASINO_SESSION_TTL_S": "301"}, "CASINO_SESSION_TTL_S"),
        ({"CASINO_RATE_BURST": "0"}, "CASINO_RATE_BURST"),
        ({"CASINO_TABLE_CAPACITY": "0"}, "CASINO_TABLE_CAPACITY"),
        ({"CASINO_OPERATOR_KEYS": '{"op": {"alg": "none"}}'}, "CASINO_OPERATOR_KEYS"),
        ({"CASINO_OPERATOR_KEYS_FILE": "/nonexistent/keys.json"}, "CASINO_OPERATOR_KEYS"),
    ],
)
async def test_unsafe_settings_stop_the_service(env: dict[str, str], named: str) -> None:
    code, output = await start_fails(env)
    assert code == 2
    assert named in output
