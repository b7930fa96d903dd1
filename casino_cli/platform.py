"""Starts the six services as separate local processes and stops them gracefully.

Used by ``casino up`` and by the tests, so both run the platform exactly the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from casino_kit.channels import KEEPALIVE_OPTIONS
from casino_kit.server import wait_until_serving


@dataclass(frozen=True)
class ServiceInfo:
    package: str
    port: int
    upstreams: tuple[str, ...] = ()
    serves_whep: bool = False


SERVICES = (
    ServiceInfo("rng_svc", 50053),
    ServiceInfo("wallet_svc", 50054),
    ServiceInfo("game_svc", 50052, ("rng_svc", "wallet_svc")),
    ServiceInfo("session_svc", 50051, ("game_svc", "wallet_svc")),
    ServiceInfo("ingest_svc", 50055, ("game_svc",)),
    ServiceInfo("edge_relay", 50056, ("ingest_svc",), serves_whep=True),
)
WHEP_PORT = 8890
"""Where players' browsers reach the relay (WHEP over HTTP), when ports are not free ones."""
BY_PACKAGE = {s.package: s for s in SERVICES}
ADDR_VARIABLE = {
    "rng_svc": "CASINO_RNG_ADDR",
    "wallet_svc": "CASINO_WALLET_ADDR",
    "game_svc": "CASINO_GAME_ADDR",
    "ingest_svc": "CASINO_INGEST_ADDR",
}


class StartError(RuntimeError):
    """A service exited or did not become SERVING in time; the message has its log tail."""


_HANDED_OUT: set[int] = set()


def _bindable(port: int) -> bool:
    """Whether a server could listen on the loopback port now (as gRPC and aiohttp bind it:
    a previous run's connections in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port free now and not handed out before by this process.

    The kernel may offer a just-released port again, and gRPC binds with SO_REUSEPORT, so
    two services given the same port would both start and share it silently.
    """
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class ServiceProcess:
    package: str
    address: str
    log_path: Path
    process: asyncio.subprocess.Process

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_serving(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        exited = asyncio.ensure_future(self.process.wait())
        try:
            async with grpc.aio.insecure_channel(
                self.address, options=KEEPALIVE_OPTIONS
            ) as channel:
                waiting = asyncio.ensure_future(wait_until_serving(channel))
                done, _ = await asyncio.wait(
                    {waiting, exited}, timeout=timeout_s, return_when="FIRST_COMPLETED"
                )
                waiting.cancel()
            check_error = waiting.exception() if waiting in done else None
            if waiting in done and check_error is None and not exited.done():
                return
            if check_error is not None:
                # A server that failed to start may answer a last health check with an error
                # while it drains, and exit after: wait for that exit to report it as such.
                await asyncio.wait({exited}, timeout=max(deadline - loop.time(), 0))
        finally:
            exited.cancel()
        if exited.done() and not exited.cancelled():
            why = f"exited with code {exited.result()}"
        elif check_error is not None:
            why = f"failed its health check ({check_error!r})"
        else:
            why = f"not SERVING after {timeout_s:.0f} s"
        raise StartError(f"{self.package} {why}; its log ends:\n{self.log_tail()}")

    async def terminate(self, timeout_s: float = 10.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


@dataclass
class Platform:
    """The services on loopback, plaintext, with embedded storage under ``data_dir``.

    ``addresses`` maps a package to its address; missing ones get their default port, or a
    free one when ``free_ports`` is set (tests, ``--free-ports``), and so does the relay's
    WHEP port. ``env`` is added to every process's environment, then
    ``service_env[package]`` to that package's (each service its own database, say).
    """

    data_dir: Path
    packages: tuple[str, ...] = tuple(s.package for s in SERVICES)
    free_ports: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    whep_port: int = WHEP_PORT

    def __post_init__(self) -> None:
        for info in SERVICES:
            port = free_port() if self.free_ports else info.port
            self.addresses.setdefault(info.package, f"127.0.0.1:{port}")
        relay_env = {**os.environ, **self.env, **self.service_env.get("edge_relay", {})}
        configured = relay_env.get("CASINO_WHEP_PORT", "")
        if configured.isdigit() and int(configured):
            self.whep_port = int(configured)
        elif self.free_ports or configured == "0":
            self.whep_port = free_port()

    def environment(self, package: str, port: int) -> dict[str, str]:
        info = BY_PACKAGE[package]
        env = {
            **os.environ,
            "CASINO_HOST": "127.0.0.1",
            "CASINO_PORT": str(port),
            "CASINO_INSECURE": "1",
            "CASINO_DATA_DIR": str(self.data_dir),
            "OTEL_SERVICE_NAME": package,
            **self.env,
            **self.service_env.get(package, {}),
        }
        for upstream in info.upstreams:
            env[ADDR_VARIABLE[upstream]] = self.addresses[upstream]
        if info.serves_whep:
            # A second instance (tests start one beside the platform's) needs a port of its own.
            if self.addresses[package] == f"127.0.0.1:{port}":
                env["CASINO_WHEP_PORT"] = str(self.whep_port)
            else:
                env.setdefault("CASINO_WHEP_PORT", str(free_port()))
        return env

    def ports_in_use(self) -> list[str]:
        """The ports this platform would listen on that something else holds now."""
        ports = {
            int(self.addresses[package].rsplit(":", 1)[1]): package for package in self.packages
        }
        if any(BY_PACKAGE[package].serves_whep for package in self.packages):
            ports[self.whep_port] = "WHEP"
        return [f"{port} ({what})" for port, what in ports.items() if not _bindable(port)]

    async def spawn(self, package: str, port: int | None = None) -> ServiceProcess:
        """Start one service process (on its platform port unless ``port`` is given).

        It is not yet SERVING when this returns.
        """
        address = self.addresses[package] if port is None else f"127.0.0.1:{port}"
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{package}-{address.rsplit(':', 1)[1]}.log"
        with log_path.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                package,
                env=self.environment(package, int(address.rsplit(":", 1)[1])),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches `casino up`, which stops each in turn
            )
        return ServiceProcess(package, address, log_path, process)

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start every service and wait until all answer SERVING; stop them all on failure."""
        if busy := self.ports_in_use():
            raise StartError(
                f"in use on 127.0.0.1: {', '.join(busy)}; stop what holds them, "
                "or start on free ports (--free-ports)"
            )
        for package in self.packages:
            self.processes[package] = await self.spawn(package)
        try:
            await asyncio.gather(*(p.wait_serving(timeout_s) for p in self.processes.values()))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> dict[str, int]:
        """SIGTERM every service at once and return their exit codes."""
        running = list(self.processes.values())
        self.processes.clear()
        codes = await asyncio.gather(*(p.terminate() for p in running))
        return {p.package: code for p, code in zip(running, codes, strict=True)}
