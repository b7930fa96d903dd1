"""Media through Debian's coturn on loopback, relay-only on both sides."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from casino_cli.platform import Platform, free_port
from tests.media.conftest import STREAM, MediaPlatform
from tests.media.whep_client import watch

USER, PASSWORD = "viewer", "s3cret"


@contextlib.asynccontextmanager
async def coturn(log_dir: Path) -> AsyncIterator[int]:
    """turnserver on 127.0.0.1 with long-term credentials; yields its port."""
    assert shutil.which("turnserver"), "Debian's coturn is required (apt-get install coturn)"
    port = free_port()
    low = free_port() // 2 * 2
    log = log_dir / f"turnserver-{port}.log"
    process = await asyncio.create_subprocess_exec(
        "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "--lt-cred-mech",
        "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        f"--min-port={low}", f"--max-port={low + 200}", "--allow-loopback-peers",
        f"--user={USER}:{PASSWORD}", "--realm=casino.test", f"--log-file={log}",
        "--simple-log", "--no-stdout-log",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.sleep(0.5)
        assert process.returncode is None, "turnserver exited"
        yield port
    finally:
        process.terminate()
        await process.wait()


async def test_media_flows_through_turn_with_a_relay_only_policy(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    async with coturn(media.platform.data_dir) as turn_port:
        turn = f"turn:127.0.0.1:{turn_port}?transport=udp"
        whep_port = free_port()
        relay = Platform(
            data_dir=media.platform.data_dir,
            packages=("edge_relay",),
            free_ports=True,
            env={
                "CASINO_WHEP_PORT": str(whep_port),
                "CASINO_ICE_SERVERS": turn,
                "CASINO_ICE_USERNAME": USER,
                "CASINO_ICE_CREDENTIAL": PASSWORD,
                "CASINO_ICE_TRANSPORT_POLICY": "relay",
            },
        )
        relay.addresses["ingest_svc"] = media.ingest
        await relay.start()
        try:
            base = f"http://127.0.0.1:{whep_port}"
            async with http.options(f"{base}/whep/{STREAM}") as response:
                links = response.headers.getall("Link")
            assert len(links) == 1
            # The viewer configures itself from the Link header, as a WHEP player does.
            match = re.match(
                r'<([^>]+)>; rel="ice-server"; username="([^"]+)"; credential="([^"]+)"', links[0]
            )
            assert match is not None, links[0]
            url, username, credential = match.groups()
            assert url == turn
            ice = RTCConfiguration(
                iceServers=[RTCIceServer(urls=url, username=username, credential=credential)],
                iceTransportPolicy=RTCIceTransportPolicy.RELAY,
            )
            viewer = await watch(http, base, f"/whep/{STREAM}", ice=ice)
            try:
                frames = await viewer.frames(10)
                assert {(f.width, f.height) for f in frames} == {(640, 360)}
                transceiver = viewer.pc.getTransceivers()[0]
                connection = transceiver.receiver.transport.transport._connection
                pairs = list(connection._nominated.values())
                assert pairs and all(p.local_candidate.type == "relay" for p in pairs)
                assert all(p.remote_candidate.type == "relay" for p in pairs)
                assert all(p.remote_candidate.host == "127.0.0.1" for p in pairs)
            finally:
                await viewer.leave(http)
        finally:
            await relay.stop()
