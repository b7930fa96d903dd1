"""The ``casino`` command as a user runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import grpc
import pytest

from casino_cli.platform import SERVICES, Platform, StartError, free_port
from casino_kit.server import wait_until_serving


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
        "--free-ports",  # the default ports may be taken on a test machine
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
    table = {line.split()[0]: line.split()[1:] for line in seen if line.startswith("  ")}
    for service in SERVICES:
        address, state = table[service.package]
        assert state == "SERVING"
        async with grpc.aio.insecure_channel(address) as channel:
            await wait_until_serving(channel)
    whep = table["players"][-1].replace("<stream_id>", "no-such-stream")
    async with aiohttp.ClientSession() as http:
        async with http.options(whep) as reply:  # the relay's WHEP port answers
            assert reply.status == 204
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
            "--free-ports",
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


async def test_a_port_in_use_stops_the_start_before_any_service_runs(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        platform = Platform(
            data_dir=tmp_path, packages=("rng_svc",), addresses={"rng_svc": f"127.0.0.1:{port}"}
        )
        with pytest.raises(StartError, match=f"in use on 127.0.0.1: {port} \\(rng_svc\\)"):
            await platform.start()
    assert not platform.processes
    assert not (tmp_path / "logs").exists()


def test_free_ports_are_never_handed_out_twice() -> None:
    """Two services given one port would both bind it (gRPC uses SO_REUSEPORT)."""
    ports = [free_port() for _ in range(3_000)]
    assert len(set(ports)) == len(ports)
