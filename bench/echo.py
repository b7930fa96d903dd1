"""The transport's own ceiling: a plain grpc.aio echo service in its own process.

Other benchmarks put their service beside this figure, driven the same way in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import grpc

from bench.harness import Load, Report, closed_loop, figures_of, median_of
from casino_cli.platform import free_port

METHOD = "/bench.Echo/Echo"


async def _serve(port: int) -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler})]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    """An echo server process on a free loopback port, stopped on exit."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.echo", str(port))
    address = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            await asyncio.wait_for(channel.channel_ready(), 15)
        yield address
    finally:
        process.terminate()
        await process.wait()


async def measure_echo(address: str, concurrency: int, duration_s: float, runs: int) -> Load:
    """Echo 64-byte messages with ``concurrency`` callers on one channel."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(METHOD)
        payload = b"x" * 64
        results = [
            await closed_loop(lambda _: call(payload, timeout=10), concurrency, duration_s)
            for _ in range(runs)
        ]
    return median_of(results)


async def main(quick: bool) -> Report:
    report = Report("echo")
    duration, runs = (1.0, 1) if quick else (3.0, 3)
    async with echo_server() as address:
        for concurrency in (1, 16, 256):
            load = await measure_echo(address, concurrency, duration, runs)
            report.figures.update(figures_of("echo", load, f"c{concurrency}"))
    return report


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
