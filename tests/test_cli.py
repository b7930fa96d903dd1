"""The ``casino`` command as a user runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from casino_cli.platform import SERVICES, free_port


async def _run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "casino_cli", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_help_lists_subcommands() -> None:
    code, out = await _run("--help")
    assert code == 0
    for command in ("up", "demo", "bench"):
        assert command in out


async def test_bench_list_names_benchmarks() -> None:
    code, out = await _run("bench", "--list")
    assert code == 0 and "echo" in out


async def test_up_starts_everything_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "casino_cli",
        "up",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(60):
        while not any("all services SERVING" in line for line in seen):
            line = (await process.stdout.readline()).decode()
            assert line, "casino up ended early:\n" + "".join(seen)
            seen.append(line)
    table = "".join(seen)
    for service in SERVICES:
        assert f"127.0.0.1:{service.port}" in table and service.package in table
    process.send_signal(signal.SIGINT)
    rest, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert rest.decode().strip().endswith("stopped")


async def test_demo_plays_rounds_with_players_and_verifies_each_proof(tmp_path: Path) -> None:
    code, out = await asyncio.wait_for(
        _run(
            "demo",
            "--data-dir",
            str(tmp_path),
            "--rounds",
            "2",
            "--window",
            "5",
            "--players",
            "8",
        ),
        180,
    )
    assert code == 0, out
    rounds = [line for line in out.splitlines() if " round " in line]
    assert len(rounds) == 6, out
    assert all(line.endswith("fairness verified") for line in rounds), out
    assert {line.split()[1] for line in rounds} == {"Roulette", "Baccarat", "Blackjack"}
    bets = [int(line.split(" bets ")[1].split()[0]) for line in rounds]
    assert sum(bets) > 0, out  # the players bet through the session service


def test_free_ports_are_never_handed_out_twice() -> None:
    """Two services given one port would both bind it (gRPC uses SO_REUSEPORT)."""
    ports = [free_port() for _ in range(3_000)]
    assert len(set(ports)) == len(ports)
