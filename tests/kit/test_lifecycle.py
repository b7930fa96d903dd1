"""Every service as a real process: health, reflection, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from casino_cli.platform import SERVICES, Platform, ServiceProcess, StartError, free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

EXPECTED = {
    "rng_svc": {"casino.rng.v1.RngService"},
    "wallet_svc": {"casino.wallet.v1.WalletService", "casino.wallet.v1.WalletAdminService"},
    "game_svc": {"casino.game.v1.GameService", "casino.game.v1.TableAdminService"},
    "session_svc": {"casino.session.v1.SessionService"},
    "ingest_svc": {"casino.ingest.v1.StudioService", "casino.ingest.v1.MediaService"},
    "edge_relay": {"casino.relay.v1.RelayAdminService", "casino.ingest.v1.MediaService"},
}
PACKAGES = [s.package for s in SERVICES]


def list_services_request() -> reflection_pb2.ServerReflectionRequest:
    return reflection_pb2.ServerReflectionRequest(list_services="")


async def check(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        status: int = reply.status
        return status


@pytest.mark.parametrize("package", PACKAGES)
async def test_serving_with_reflection(platform: Platform, package: str) -> None:
    address = platform.addresses[package]
    assert await check(address) == SERVING
    for service in EXPECTED[package]:
        assert await check(address, service) == SERVING
    async with grpc.aio.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = [r async for r in stub.ServerReflectionInfo(iter([list_services_request()]))]
    listed = {s.name for s in replies[0].list_services_response.service}
    assert (
        EXPECTED[package]
        | {
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        <= listed
    )


@pytest.mark.parametrize("package", PACKAGES)
async def test_sigterm_drains_and_exits_zero(platform: Platform, package: str) -> None:
    """A second instance of the service gets SIGTERM while a streaming call is open."""
    instance = await platform.spawn(package, port=free_port())
    try:
        await instance.wait_serving(30)
        async with grpc.aio.insecure_channel(instance.address) as channel:
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
            await stream.write(list_services_request())
            assert (await stream.read()).HasField("list_services_response")

            instance.process.terminate()
            signalled = time.monotonic()
            await asyncio.sleep(0.2)
            assert await check(instance.address) == NOT_SERVING

            # The call opened before SIGTERM is still answered, then ends cleanly.
            await stream.write(list_services_request())
            assert (await stream.read()).HasField("list_services_response")
            await stream.done_writing()
            assert await stream.code() == grpc.StatusCode.OK

        code = await asyncio.wait_for(instance.process.wait(), 5)
        assert code == 0, instance.log_tail()
        assert time.monotonic() - signalled < 5
    finally:
        await instance.terminate()


@pytest.mark.parametrize(
    ("command", "reported"),
    [
        (("sleep", "30"), "rng_svc failed its health check"),
        # The health check fails first, then the process exits: that is what counts.
        (("sleep", "0.5"), "rng_svc exited with code 0"),
    ],
)
async def test_a_failing_health_check_is_a_failed_start(
    tmp_path: Path, command: tuple[str, ...], reported: str
) -> None:
    """A process whose server answers the health check with an error (here: no health
    service at all; in life, a server stopping under the call) has not started."""
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    process = await asyncio.create_subprocess_exec(*command)
    instance = ServiceProcess("rng_svc", f"127.0.0.1:{port}", tmp_path / "rng.log", process)
    try:
        with pytest.raises(StartError, match=reported):
            await instance.wait_serving(2)
    finally:
        await instance.terminate()
        await server.stop(None)
