"""The ingest's rendition ladder, pinned renditions, and switching on RTCP figures."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc

from casino.ingest.v1 import ingest_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from casino.relay.v1 import relay_service_pb2, relay_service_pb2_grpc
from casino_cli.platform import Platform, free_port
from edge_relay.abr import Policy, choose
from tests.media.conftest import STREAM, MediaPlatform
from tests.media.whep_client import watch

LADDER = ["source", "360p", "180p"]


def test_policy_steps_down_at_once_and_up_after_good_checks() -> None:
    policy = Policy(max_fraction_lost=0.05, max_rtt_ms=400, up_after=3)
    assert choose(policy, LADDER, "source", 0.2, 50, 0).rendition == "360p"
    assert choose(policy, LADDER, "360p", 0.0, 900, 2).rendition == "180p"
    assert choose(policy, LADDER, "180p", 0.5, 900, 0).rendition == "180p"  # the bottom
    first = choose(policy, LADDER, "180p", 0.0, 20, 0)
    assert first.rendition == "180p" and first.good_checks == 1
    assert choose(policy, LADDER, "180p", 0.0, 20, 2).rendition == "360p"
    # Middling figures neither move the viewer nor count as good.
    assert choose(policy, LADDER, "360p", 0.03, 20, 2).good_checks == 0
    assert choose(policy, LADDER, "source", 0.0, 20, 9).rendition == "source"  # the top
    assert choose(policy, LADDER, "other", 0.9, 900, 0).rendition == "other"


async def test_the_ladder_is_encoded_once_per_stream(media: MediaPlatform) -> None:
    async with grpc.aio.insecure_channel(media.ingest) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        for _ in range(100):
            listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest())
            mine = {s.rendition: s for s in listed.streams if s.stream_id == STREAM}
            if len(mine) == 3:
                break
            await asyncio.sleep(0.1)
        # 720p is taller than the 360p source, so it is skipped.
        assert {r: (s.width, s.height) for r, s in mine.items()} == {
            "source": (640, 360),
            "360p": (640, 360),
            "180p": (320, 180),
        }
        assert mine["180p"].publisher_id.startswith("ladder:")
        call = stub.Subscribe(
            ingest_service_pb2.SubscribeRequest(stream_id=STREAM, rendition="180p")
        )
        params = (await call.read()).codec_parameters
        assert params.codec == ingest_pb2.CODEC_H264
        assert params.extradata[4] & 0x1F == 7 and params.extradata[5] == 66  # baseline SPS
        units = [(await call.read()).access_unit for _ in range(40)]
        call.cancel()
    assert units[0].keyframe and sum(u.keyframe for u in units) >= 2
    assert all(u.capture_time_us > 0 for u in units)


async def test_a_viewer_picks_a_rendition_by_url(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    viewer = await watch(http, media.whep, f"/whep/{STREAM}/180p")
    try:
        frames = await viewer.frames(10)
        assert {(f.width, f.height) for f in frames} == {(320, 180)}
    finally:
        await viewer.leave(http)


async def test_the_relay_moves_a_viewer_down_on_bad_rtt_and_checks_tokens(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    whep_port, metrics_port = free_port(), free_port()
    relay = Platform(
        data_dir=media.platform.data_dir,
        packages=("edge_relay",),
        free_ports=True,
        env={
            "CASINO_WHEP_PORT": str(whep_port),
            "CASINO_WHEP_TOKEN": "let-me-in",
            "CASINO_METRICS_PORT": str(metrics_port),
            # Any measured RTT is "too high": every check steps the viewer down.
            "CASINO_ABR_MAX_RTT_MS": "0.001",
        },
    )
    relay.addresses["ingest_svc"] = media.ingest
    await relay.start()
    base = f"http://127.0.0.1:{whep_port}"
    try:
        try:
            await watch(http, base, f"/whep/{STREAM}")
            raise AssertionError("expected 401")
        except AssertionError as error:
            assert "answered 401" in str(error)
        viewer = await watch(http, base, f"/whep/{STREAM}", token="let-me-in")
        try:
            sizes = set()
            for _ in range(60):
                frames = await viewer.frames(10)
                sizes |= {(f.width, f.height) for f in frames}
                if frames[-1].width == 320:
                    break
            assert (640, 360) in sizes, "it starts on the source"
            assert frames[-1].width == 320 and frames[-1].height == 180, "then plays 180p"
            async with grpc.aio.insecure_channel(relay.addresses["edge_relay"]) as channel:
                stub = relay_service_pb2_grpc.RelayAdminServiceStub(channel)
                listed = await stub.ListViewers(relay_service_pb2.ListViewersRequest())
            assert [v.rendition for v in listed.viewers] == ["180p"]
            viewer_id = viewer.location.rsplit("/", 1)[1]
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                exported = await response.text()
            rtt = [
                line
                for line in exported.splitlines()
                if line.startswith("relay_viewer_rtt") and viewer_id in line
            ]
            assert rtt and float(rtt[0].rsplit(" ", 1)[1]) > 0, exported[-2000:]
            assert any(line.startswith("relay_viewers") for line in exported.splitlines())
        finally:
            async with http.delete(base + viewer.location) as response:
                assert response.status == 401, "leaving needs the token too"
            async with http.delete(
                base + viewer.location, headers={"Authorization": "Bearer let-me-in"}
            ) as response:
                assert response.status == 200
            await viewer.pc.close()
    finally:
        await relay.stop()
