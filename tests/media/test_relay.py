"""The edge relay against real processes: WHEP, pass-through fan-out, chaining, stalls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import grpc

from casino.ingest.v1 import ingest_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from casino.relay.v1 import relay_pb2, relay_service_pb2, relay_service_pb2_grpc
from casino_cli.platform import Platform, free_port
from casino_kit.errors import details_of
from tests.media.conftest import (
    RTMP_STREAM,
    STREAM,
    STUDIO_CREDENTIALS,
    UDP_STREAM,
    MediaPlatform,
    ffmpeg_feed,
    rtmp_url,
    wait_for_stream,
)
from tests.media.whep_client import Viewer, watch


async def _until(predicate: object, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_viewer_decodes_the_stream_and_leaves_with_delete(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    viewer = await watch(http, media.whep, f"/whep/{STREAM}")
    try:
        assert viewer.location.startswith("/whep/resource/")
        frames = await viewer.frames(15)
        assert {(f.width, f.height) for f in frames} == {(640, 360)}
        assert all(b.pts > a.pts for a, b in zip(frames, frames[1:], strict=False))
        async with grpc.aio.insecure_channel(media.relay) as channel:
            stub = relay_service_pb2_grpc.RelayAdminServiceStub(channel)
            listed = await stub.ListViewers(relay_service_pb2.ListViewersRequest(stream_id=STREAM))
            ids = [v.viewer_id for v in listed.viewers]
            viewer_id = viewer.location.rsplit("/", 1)[1]
            assert viewer_id in ids
            mine = next(v for v in listed.viewers if v.viewer_id == viewer_id)
            assert mine.state == relay_pb2.VIEWER_STATE_CONNECTED
            assert mine.rendition == "source"
    finally:
        assert await viewer.leave(http) == 200
    async with http.delete(media.whep + viewer.location) as again:
        assert again.status == 404


async def test_a_viewer_trickles_its_candidates_by_patch(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    viewer = await watch(http, media.whep, f"/whep/{STREAM}", decode=False, trickle=True)
    try:
        await _until(lambda: viewer.frames_marked >= 10, 20, "media after trickled candidates")
        url = media.whep + viewer.location
        sdpfrag = {"Content-Type": "application/trickle-ice-sdpfrag"}
        async with http.patch(url, data="a=ice-ufrag:other\r\n", headers=sdpfrag) as r:
            assert r.status == 422, "an ICE restart is refused"
        async with http.patch(url, data="a=candidate:1 1 UDP\r\n", headers=sdpfrag) as r:
            assert r.status == 422
        async with http.patch(url, data="", headers={"Content-Type": "application/sdp"}) as r:
            assert r.status == 415
        async with http.patch(media.whep + "/whep/resource/nope", data="", headers=sdpfrag) as r:
            assert r.status == 404
    finally:
        await viewer.leave(http)


async def test_opus_audio_reaches_a_viewer_that_offers_audio(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    url = f"udp://127.0.0.1:{media.udp_port}?pkt_size=1316"
    async with ffmpeg_feed(url, size="320x240", audio=True):
        await wait_for_stream(media.ingest, UDP_STREAM)
        async with grpc.aio.insecure_channel(media.ingest) as channel:
            stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
            for _ in range(100):
                listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest())
                live = {(s.stream_id, s.rendition) for s in listed.streams}
                if {(UDP_STREAM, "audio"), (UDP_STREAM, "source")} <= live:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the ingest never listed both video and Opus audio")
        viewer = await watch(http, media.whep, f"/whep/{UDP_STREAM}", decode=False, audio=True)
        try:
            answer = viewer.pc.remoteDescription.sdp
            assert "m=audio" in answer and "opus/48000" in answer.lower()
            await _until(lambda: viewer.audio_packets >= 50, 20, "Opus packets")
            await _until(lambda: viewer.frames_marked >= 30, 20, "video beside the audio")
        finally:
            await viewer.leave(http)


async def test_whep_answers_browsers_and_refuses_bad_offers(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    async with http.options(f"{media.whep}/whep/{STREAM}") as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "Location" in response.headers["Access-Control-Expose-Headers"]
        assert response.headers["Accept-Post"] == "application/sdp"
    async with http.post(
        f"{media.whep}/whep/{STREAM}", data="v=0", headers={"Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415
    try:
        await watch(http, media.whep, "/whep/no-such-stream")
        raise AssertionError("expected 404")
    except AssertionError as error:
        assert "answered 404" in str(error)


async def _relay_stats(http: aiohttp.ClientSession, media: MediaPlatform) -> dict[str, object]:
    async with http.get(f"{media.whep}/stats") as response:
        assert response.status == 200
        body: dict[str, object] = await response.json()
        return body


async def test_twenty_viewers_play_and_the_relay_never_decodes_or_encodes(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    already = (await _relay_stats(http, media))["viewers"]
    assert isinstance(already, int)
    viewers = [
        await watch(http, media.whep, f"/whep/{STREAM}", decode=False, capture_channel=True)
        for _ in range(20)
    ]
    try:
        await _until(lambda: all(v.frames_marked >= 30 for v in viewers), 30, "media at all 20")
        before = [v.frames_marked for v in viewers]
        await asyncio.sleep(2.0)
        rates = [(v.frames_marked - b) / 2.0 for v, b in zip(viewers, before, strict=True)]
        assert min(rates) >= 24, f"every viewer gets about 30 fps: {rates}"
        stats = await _relay_stats(http, media)
        assert stats["viewers"] == already + 20
        probe = stats["codec_probe"]
        assert isinstance(probe, dict)
        # One pack() per access unit for all viewers together: the pack path, done once.
        assert probe["packets_packed"] >= 30, "the probe sees the pack() path"
        assert probe["codec_contexts_created"] == 0
        assert probe["h264_encoders_used"] == 0
        assert probe["h264_decoders_created"] == 0
        # Every frame's capture time reaches the viewer, keyed by its RTP timestamp.
        assert all(len(v.delays_ms) > 10 for v in viewers)
        delays = sorted(d for v in viewers for d in v.delays_ms)
        assert 0 < delays[len(delays) // 2] < 1000
    finally:
        for v in viewers:
            await v.leave(http)


async def test_viewer_stats_come_from_rtcp(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    viewer = await watch(http, media.whep, f"/whep/{STREAM}")
    try:
        await viewer.frames(5)
        viewer_id = viewer.location.rsplit("/", 1)[1]
        async with grpc.aio.insecure_channel(media.relay) as channel:
            stub = relay_service_pb2_grpc.RelayAdminServiceStub(channel)
            request = relay_service_pb2.GetViewerStatsRequest(viewer_id=viewer_id)
            for _ in range(100):  # receiver reports come every second or so
                # Keep decoding so the client keeps receiving and reporting.
                await viewer.frames(3)
                stats = (await stub.GetViewerStats(request)).stats
                if stats.rtt_ms > 0:
                    break
            assert 0 < stats.rtt_ms < 500
            assert stats.packets_sent > 0 and stats.bytes_sent > 0
            assert stats.bitrate_bps > 50_000
            assert stats.jitter_ms >= 0 and stats.packets_lost >= 0
            try:
                await stub.GetViewerStats(relay_service_pb2.GetViewerStatsRequest(viewer_id="x"))
                raise AssertionError("expected NOT_FOUND")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND
                assert details_of(error).reason == "VIEWER_NOT_FOUND"
        async with http.get(f"{media.whep}{viewer.location}/stats") as response:
            body = await response.json()
        assert body["viewer_id"] == viewer_id and body["packets_sent"] > 0
    finally:
        await viewer.leave(http)


@contextlib.asynccontextmanager
async def chained_relay(media: MediaPlatform, upstream: str) -> AsyncIterator[tuple[str, str, int]]:
    """A second edge relay process subscribing to ``upstream``: (grpc, whep, pid)."""
    whep_port = free_port()
    platform = Platform(
        data_dir=media.platform.data_dir,
        packages=("edge_relay",),
        free_ports=True,
        env={"CASINO_WHEP_PORT": str(whep_port), "CASINO_SUBSCRIBER_QUEUE": "60"},
    )
    platform.addresses["ingest_svc"] = upstream
    await platform.start()
    try:
        pid = platform.processes["edge_relay"].process.pid
        yield platform.addresses["edge_relay"], f"http://127.0.0.1:{whep_port}", pid
    finally:
        await platform.stop()


async def test_relays_chain_ingest_to_a_to_b_to_viewer(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    async with chained_relay(media, media.relay) as (relay_b, whep_b, _):
        viewer = await watch(http, whep_b, f"/whep/{STREAM}")
        try:
            frames = await viewer.frames(10)
            assert {(f.width, f.height) for f in frames} == {(640, 360)}
            async with grpc.aio.insecure_channel(media.relay) as channel:
                stub = relay_service_pb2_grpc.RelayAdminServiceStub(channel)
                a = (await stub.GetRelayStats(relay_service_pb2.GetRelayStatsRequest())).stats
            assert a.downstream_relays == 1
            async with grpc.aio.insecure_channel(relay_b) as channel:
                stub = relay_service_pb2_grpc.RelayAdminServiceStub(channel)
                b = (await stub.GetRelayStats(relay_service_pb2.GetRelayStatsRequest())).stats
            assert b.upstream == media.relay and b.viewers == 1 and b.upstream_streams == 1
            await wait_for_stream(relay_b, STREAM)  # ListStreams through the chain
        finally:
            await viewer.leave(http)


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _fps(viewers: list[Viewer], seconds: float) -> list[float]:
    before = [v.frames_marked for v in viewers]
    await asyncio.sleep(seconds)
    return [(v.frames_marked - b) / seconds for v, b in zip(viewers, before, strict=True)]


async def test_a_stalled_downstream_neither_delays_others_nor_grows_memory(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    relay_a = media.platform.processes["edge_relay"].process.pid
    async with chained_relay(media, media.relay) as (_, whep_b, stalled):
        behind_b = await watch(http, whep_b, f"/whep/{STREAM}", decode=False)
        direct = [await watch(http, media.whep, f"/whep/{STREAM}", decode=False) for _ in range(3)]
        try:
            await _until(lambda: behind_b.frames_marked >= 30, 20, "media behind relay B")
            os.kill(stalled, signal.SIGSTOP)  # relay B stops reading its upstream stream
            try:
                rss_start = _rss_kb(relay_a)
                rates = await _fps(direct, 8.0)
                rss_end = _rss_kb(relay_a)
                frozen = behind_b.frames_marked
            finally:
                os.kill(stalled, signal.SIGCONT)
            assert min(rates) >= 24, f"relay A's own viewers keep their frame rate: {rates}"
            assert rss_end - rss_start < 30_000, f"relay A grew {rss_end - rss_start} kB"
            # Relay B resumes at a keyframe and its viewer gets media again.
            await _until(lambda: behind_b.frames_marked > frozen + 30, 20, "B's viewer resumes")
        finally:
            await behind_b.leave(http)
            for v in direct:
                await v.leave(http)


async def test_an_rtmp_publisher_reaches_a_webrtc_viewer(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    async with ffmpeg_feed(rtmp_url(media.rtmp_port), fmt="flv", size="320x240"):
        await wait_for_stream(media.ingest, RTMP_STREAM)
        viewer = await watch(http, media.whep, f"/whep/{RTMP_STREAM}")
        try:
            frames = await viewer.frames(10)
            assert {(f.width, f.height) for f in frames} == {(320, 240)}
        finally:
            await viewer.leave(http)


async def test_viewers_are_closed_when_their_publisher_is_gone_for_good(
    media: MediaPlatform, http: aiohttp.ClientSession
) -> None:
    descriptor = ingest_pb2.StreamDescriptor(
        stream_id="short-lived",
        rendition="source",
        codec=ingest_pb2.CODEC_H264,
        width=64,
        height=64,
        extradata=b"\x00\x00\x00\x01\x67\x42\xc0\x0a\x00\x00\x00\x01\x68\xce",
    )
    frames = [
        ingest_service_pb2.PublishRequest(
            frame=ingest_pb2.EncodedFrame(
                data=b"\x00\x00\x00\x01\x65" + bytes(20),
                keyframe=True,
                pts=i * 3000,
                dts=i * 3000,
                time_base_num=1,
                time_base_den=90000,
                capture_time_us=time.time_ns() // 1000,
            )
        )
        for i in range(3)
    ]
    async with grpc.aio.insecure_channel(media.ingest) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        release = asyncio.Event()

        async def publish() -> AsyncIterator[ingest_service_pb2.PublishRequest]:
            yield ingest_service_pb2.PublishRequest(descriptor=descriptor)
            for request in frames:
                yield request
            await release.wait()

        publishing = stub.Publish(publish(), metadata=STUDIO_CREDENTIALS)
        await wait_for_stream(media.ingest, "short-lived")
        viewer = await watch(http, media.whep, "/whep/short-lived", decode=False)
        release.set()
        await publishing  # the publisher leaves; the ingest waits 10 s for another one
    viewer_id = viewer.location.rsplit("/", 1)[1]
    async with grpc.aio.insecure_channel(media.relay) as channel:
        admin = relay_service_pb2_grpc.RelayAdminServiceStub(channel)

        async def listed() -> list[str]:
            reply = await admin.ListViewers(relay_service_pb2.ListViewersRequest())
            return [v.viewer_id for v in reply.viewers]

        assert viewer_id in await listed()
        for _ in range(200):
            if viewer_id not in await listed():
                break
            await asyncio.sleep(0.1)
        assert viewer_id not in await listed()
    async with http.delete(media.whep + viewer.location) as response:
        assert response.status == 404
    await viewer.pc.close()


async def test_a_relay_refuses_publishers(media: MediaPlatform) -> None:
    async with grpc.aio.insecure_channel(media.relay) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        request = ingest_service_pb2.PublishRequest(
            descriptor=ingest_pb2.StreamDescriptor(stream_id="x", rendition="source")
        )
        try:
            await stub.Publish(iter([request]))
            raise AssertionError("expected UNIMPLEMENTED")
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "publish to the ingest" in (error.details() or "")
