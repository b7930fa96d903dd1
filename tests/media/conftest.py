"""The media path as real processes: game and its upstreams, the ingest, an edge relay, and
Debian's ffmpeg pushing a 30 fps H.264 test pattern (baseline, 1 s GOP) as MPEG-TS over TCP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio

from casino.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from casino_cli.platform import Platform, free_port

STREAM = "table-1"
RTMP_STREAM = "table-2"
UDP_STREAM = "table-3"
PACKAGES = ("rng_svc", "wallet_svc", "game_svc", "ingest_svc", "edge_relay")

STUDIO_ID = "studio-1"
STUDIO_SECRET = base64.urlsafe_b64encode(b"s" * 32).decode().rstrip("=")
STUDIO_CREDENTIALS = (("authorization", f"Bearer {STUDIO_ID}.{STUDIO_SECRET}"),)
"""gRPC metadata of a studio that may publish the test streams (``sdk-*``, ``short-lived``)."""
STUDIO_KEYS = {
    STUDIO_ID: {"secret": STUDIO_SECRET, "streams": ["sdk-*", "short-lived"]},
    "studio-2": {"secret": base64.urlsafe_b64encode(b"t" * 32).decode(), "streams": ["t2-*"]},
}

# WebRTC ICE never offers loopback candidates, so these tests need an address of their own:
# they run inside the private network namespace that scripts/in-test-netns makes.
if not os.environ.get("CASINO_TEST_NETNS"):
    raise pytest.UsageError(
        "tests/media run inside a private network namespace: "
        "scripts/in-test-netns pytest tests/media"
    )


def ffmpeg_args(
    url: str,
    size: str = "640x360",
    rate: int = 30,
    bitrate: str = "800k",
    fmt: str = "mpegts",
    audio: bool = False,
) -> list[str]:
    """A live test pattern: libx264 zerolatency, constrained baseline, no B-frames, 1 s GOP;
    with ``audio`` also a 440 Hz tone as Opus."""
    tone = ["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    opus = ["-c:a", "libopus", "-b:a", "64k"]
    return [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={rate}",
        *(tone if audio else []),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-profile:v",
        "baseline",
        "-bf",
        "0",
        "-g",
        str(rate),
        "-keyint_min",
        str(rate),
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        bitrate,
        *(opus if audio else []),
        "-f",
        fmt,
        url,
    ]


@contextlib.asynccontextmanager
async def ffmpeg_feed(
    url: str, **kwargs: str | int | bool
) -> AsyncIterator[asyncio.subprocess.Process]:
    """ffmpeg pushing the test pattern to ``url`` until the block ends."""
    assert shutil.which("ffmpeg"), "Debian's ffmpeg is required (apt-get install ffmpeg)"
    process = await asyncio.create_subprocess_exec(
        *ffmpeg_args(url, **kwargs),  # type: ignore[arg-type]
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def wait_for_stream(address: str, stream_id: str, timeout_s: float = 20.0) -> None:
    """Poll ListStreams until ``stream_id`` is live at ``address``."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest(), timeout=5)
            if any(s.stream_id == stream_id for s in listed.streams):
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"stream {stream_id} not live at {address} after {timeout_s} s")


def rtmp_url(port: int) -> str:
    return f"rtmp://127.0.0.1:{port}/live/{RTMP_STREAM}"


@dataclass
class MediaPlatform:
    platform: Platform
    ts_port: int
    whep_port: int
    rtmp_port: int
    udp_port: int

    @property
    def ingest(self) -> str:
        return self.platform.addresses["ingest_svc"]

    @property
    def relay(self) -> str:
        return self.platform.addresses["edge_relay"]

    @property
    def whep(self) -> str:
        return f"http://127.0.0.1:{self.whep_port}"


@pytest_asyncio.fixture(scope="session")
async def media(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MediaPlatform]:
    """The platform's media path with a live MPEG-TS feed of stream ``table-1``."""
    data_dir: Path = tmp_path_factory.mktemp("media")
    ts_port, whep_port, rtmp_port, udp_port = free_port(), free_port(), free_port(), free_port()
    platform = Platform(
        data_dir=data_dir,
        packages=PACKAGES,
        free_ports=True,
        env={
            "CASINO_MPEGTS_LISTEN": (
                f"{STREAM}=tcp://127.0.0.1:{ts_port},{UDP_STREAM}=udp://127.0.0.1:{udp_port}"
            ),
            "CASINO_RTMP_LISTEN": f"{RTMP_STREAM}={rtmp_url(rtmp_port)}",
            "CASINO_WHEP_PORT": str(whep_port),
            "CASINO_CODEC_PROBE": "1",
            "CASINO_UPSTREAM_LINGER_S": "1",
            "CASINO_LADDER": "720p,360p,180p",
            "CASINO_STUDIO_KEYS": json.dumps(STUDIO_KEYS),
        },
    )
    await platform.start()
    try:
        async with ffmpeg_feed(f"tcp://127.0.0.1:{ts_port}"):
            await wait_for_stream(platform.addresses["ingest_svc"], STREAM)
            yield MediaPlatform(platform, ts_port, whep_port, rtmp_port, udp_port)
    finally:
        await platform.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
