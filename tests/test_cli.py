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

from casino_cli.platform import SERVICES, WHEP_PORT, Platform, StartError, free_port
from casino_kit.server import wait_until_serving


async def _run(*args: str) -> tuple[int, str]:
    """The exit code, and what was printed on stdout; a traceback on stderr fails the test."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "casino_cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert "Traceback" not in err.decode(), err.decode()
    return process.returncode or 0, out.decode()


async def test_help_lists_subcommands() -> None:
    code, out = await _run("--help")
    assert code == 0
    for command in ("up", "demo", "bench"):
        assert command in out


async def test_bench_list_names_benchmarks() -> None:
    code, out = await _run("bench", "--list")
    assert code == 0 and "echo" in out


class Interactive:
    """``casino`` run as in a terminal: read what it prints until a line, then Ctrl-C."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> Interactive:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "casino_cli",
            *args,
            "--free-ports",  # the default ports may be taken on a test machine
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(process)

    async def read_until(self, text: str, timeout: float = 60) -> None:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while not any(text in line for line in self.seen):
                line = (await self.process.stdout.readline()).decode()
                assert line, "it ended early:\n" + "".join(self.seen)
                self.seen.append(line)

    async def ctrl_c(self) -> str:
        """What it printed after Ctrl-C; it must exit 0 without a traceback."""
        self.process.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(self.process.communicate(), 30)
        assert "Traceback" not in err.decode(), err.decode()
        assert self.process.returncode == 0
        return rest.decode()


async def test_up_starts_everything_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    up = await Interactive.start("up", "--data-dir", str(tmp_path))
    await up.read_until("all services SERVING")
    table = {line.split()[0]: line.split()[1:] for line in up.seen if line.startswith("  ")}
    for service in SERVICES:
        address, state = table[service.package]
        assert state == "SERVING"
        async with grpc.aio.insecure_channel(address) as channel:
            await wait_until_serving(channel)
    whep = table["players"][-1].replace("<stream_id>", "no-such-stream")
    async with aiohttp.ClientSession() as http:
        async with http.options(whep) as reply:  # the relay's WHEP port answers
            assert reply.status == 204
    assert (await up.ctrl_c()).strip().endswith("stopped")


async def test_demo_stops_on_ctrl_c_while_players_bet(tmp_path: Path) -> None:
    """Bets still on their way at Ctrl-C are cancelled, not left to fail on a closed channel."""
    demo = await Interactive.start(
        "demo", "--data-dir", str(tmp_path), "--window", "5", "--players", "8"
    )
    await demo.read_until("fairness verified")  # a round ended; the next opens 2 s later
    await asyncio.sleep(3.0)  # and its bets are on their way (each leaves 0.2-3 s after)
    assert "stopping" in await demo.ctrl_c()


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


@pytest.mark.parametrize(
    ("env", "free_ports", "expected"),
    [({}, False, WHEP_PORT), ({"CASINO_WHEP_PORT": "9123"}, False, 9123), ({}, True, None)],
)
def test_the_whep_port_printed_is_the_one_the_relay_gets(
    tmp_path: Path, env: dict[str, str], free_ports: bool, expected: int | None
) -> None:
    platform = Platform(data_dir=tmp_path, env=env, free_ports=free_ports)
    port = int(platform.addresses["edge_relay"].rsplit(":", 1)[1])
    given = platform.environment("edge_relay", port)["CASINO_WHEP_PORT"]
    assert given == str(platform.whep_port)
    if expected is None:  # a free one (the kernel never hands out 8890: not ephemeral)
        assert platform.whep_port not in (0, WHEP_PORT)
    else:
        assert platform.whep_port == expected


def test_free_ports_are_never_handed_out_twice() -> None:
    """Two services given one port would both bind it (gRPC uses SO_REUSEPORT)."""
    ports = [free_port() for _ in range(3_000)]
    assert len(set(ports)) == len(ports)
