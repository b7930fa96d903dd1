"""The ingest's MediaService against real processes: MPEG-TS in, Subscribe and Publish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from casino.ingest.v1 import ingest_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from casino_kit.errors import details_of
from tests.media.conftest import (
    STREAM,
    STUDIO_CREDENTIALS,
    STUDIO_ID,
    STUDIO_KEYS,
    UDP_STREAM,
    MediaPlatform,
    ffmpeg_feed,
    wait_for_stream,
)


async def _take(
    call: AsyncIterator[ingest_service_pb2.SubscribeResponse], count: int
) -> list[ingest_service_pb2.SubscribeResponse]:
    out = []
    async for message in call:
        out.append(message)
        if len(out) == count:
            break
    return out


async def test_subscribe_starts_with_params_then_a_keyframe_then_live_units(
    media: MediaPlatform,
) -> None:
    async with grpc.aio.insecure_channel(media.ingest) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        call = stub.Subscribe(
            ingest_service_pb2.SubscribeRequest(stream_id=STREAM, rendition="source")
        )
        started = time.monotonic()
        messages = await asyncio.wait_for(_take(call, 91), 20)
        call.cancel()
    params = messages[0].codec_parameters
    assert messages[0].WhichOneof("message") == "codec_parameters"
    assert params.codec == ingest_pb2.CODEC_H264
    assert (params.width, params.height) == (640, 360)
    assert params.time_base_den == 90000
    assert params.extradata.startswith(b"\x00\x00\x00\x01\x67")  # Annex-B SPS
    units = [m.access_unit for m in messages[1:]]
    assert all(m.WhichOneof("message") == "access_unit" for m in messages[1:])
    assert units[0].keyframe, "a subscription starts at the latest keyframe"
    assert units[0].data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
    sequences = [u.sequence for u in units]
    assert sequences == list(range(sequences[0], sequences[0] + len(units)))
    assert sum(u.keyframe for u in units) >= 2, "1 s GOP: a keyframe every 30 units"
    assert all(b.pts > a.pts for a, b in zip(units, units[1:], strict=False))
    now_us = time.time_ns() // 1000
    assert all(now_us - 30_000_000 < u.capture_time_us <= now_us for u in units)
    # The buffered GOP comes at once, then live units at 30 fps: 90 units take about 2-3 s.
    assert time.monotonic() - started < 6


async def test_subscribe_to_an_unknown_stream_is_not_found(media: MediaPlatform) -> None:
    async with grpc.aio.insecure_channel(media.ingest) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        call = stub.Subscribe(
            ingest_service_pb2.SubscribeRequest(stream_id="nope", rendition="source")
        )
        try:
            await call.read()
            raise AssertionError("expected NOT_FOUND")
        except grpc.aio.AioRpcError as error:
            details = details_of(error)
    assert details.code == grpc.StatusCode.NOT_FOUND
    assert details.reason == "STREAM_NOT_FOUND"


def _frames(count: int, first_pts: int = 0) -> list[ingest_service_pb2.PublishRequest]:
    return [
        ingest_service_pb2.PublishRequest(
            frame=ingest_pb2.EncodedFrame(
                data=b"\x00\x00\x00\x01" + bytes([0x65 if i % 5 == 0 else 0x41]) + bytes(50),
                keyframe=i % 5 == 0,
                pts=first_pts + i * 3000,
                dts=first_pts + i * 3000,
                time_base_num=1,
                time_base_den=90000,
                capture_time_us=1_700_000_000_000_000 + i * 33_333,
            )
        )
        for i in range(count)
    ]


DESCRIPTOR = ingest_pb2.StreamDescriptor(
    stream_id="sdk-1",
    rendition="720p",
    table_id="t-9",
    codec=ingest_pb2.CODEC_H264,
    width=1280,
    height=720,
    extradata=b"\x00\x00\x00\x01\x67\x42\xc0\x1f\x00\x00\x00\x01\x68\xce",
)


async def test_publish_over_grpc_reaches_subscribers_unchanged(media: MediaPlatform) -> None:
    async with grpc.aio.insecure_channel(media.ingest) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        release = asyncio.Event()

        async def publish() -> AsyncIterator[ingest_service_pb2.PublishRequest]:
            yield ingest_service_pb2.PublishRequest(descriptor=DESCRIPTOR)
            for request in _frames(7):
                yield request
            await release.wait()
            for request in _frames(5, first_pts=7 * 3000):
                yield request

        publishing = stub.Publish(publish(), metadata=STUDIO_CREDENTIALS)
        await wait_stream(stub, "sdk-1")
        listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest(table_id="t-9"))
        assert [s.publisher_id for s in listed.streams] == [STUDIO_ID], "the studio publishes"
        # A second publisher of the same stream and rendition is refused.
        second = stub.Publish(
            iter([ingest_service_pb2.PublishRequest(descriptor=DESCRIPTOR), *_frames(1)]),
            metadata=STUDIO_CREDENTIALS,
        )
        try:
            await second
            raise AssertionError("expected ALREADY_EXISTS")
        except grpc.aio.AioRpcError as error:
            assert details_of(error).reason == "STREAM_ALREADY_PUBLISHED"
        call = stub.Subscribe(
            ingest_service_pb2.SubscribeRequest(stream_id="sdk-1", rendition="720p")
        )
        first = await call.read()
        assert first.codec_parameters.extradata == DESCRIPTOR.extradata
        assert (first.codec_parameters.width, first.codec_parameters.height) == (1280, 720)
        gop = [(await call.read()).access_unit for _ in range(2)]
        # Frames 5 and 6 are the current GOP (keyframe at 5).
        assert [u.pts for u in gop] == [15000, 18000]
        assert gop[0].keyframe and not gop[1].keyframe
        release.set()
        live = [(await call.read()).access_unit for _ in range(5)]
        assert [u.pts for u in live] == [21000 + i * 3000 for i in range(5)]
        assert live[0].data == _frames(1)[0].frame.data  # unchanged bytes
        assert live[0].capture_time_us == 1_700_000_000_000_000
        listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest(table_id="t-9"))
        assert [(s.stream_id, s.rendition, s.subscriber_count) for s in listed.streams] == [
            ("sdk-1", "720p", 1)
        ]
        call.cancel()
        response = await publishing
    assert response.frames_received == 12
    assert response.bytes_received == 12 * 55


async def wait_stream(stub: ingest_service_pb2_grpc.MediaServiceStub, stream_id: str) -> None:
    for _ in range(100):
        listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest())
        if any(s.stream_id == stream_id for s in listed.streams):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{stream_id} never listed")


async def test_publish_needs_the_studio_own_credentials_and_stream(
    media: MediaPlatform,
) -> None:
    descriptor = ingest_pb2.StreamDescriptor()
    descriptor.CopyFrom(DESCRIPTOR)
    descriptor.stream_id = "sdk-auth"
    requests = [ingest_service_pb2.PublishRequest(descriptor=descriptor), *_frames(2)]
    wrong_secret = STUDIO_KEYS["studio-2"]["secret"]
    refused = {
        "no credentials": (),
        "not a bearer": (("authorization", f"Basic {STUDIO_ID}.{wrong_secret}"),),
        "wrong secret": (("authorization", f"Bearer {STUDIO_ID}.{wrong_secret}"),),
        "unknown studio": (("authorization", f"Bearer studio-9.{wrong_secret}"),),
        "not base64": (("authorization", f"Bearer {STUDIO_ID}.!!"),),
    }
    async with grpc.aio.insecure_channel(media.ingest) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        for case, metadata in refused.items():
            try:
                await stub.Publish(iter(requests), metadata=metadata)
                raise AssertionError(f"{case}: expected UNAUTHENTICATED")
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
            assert details.code == grpc.StatusCode.UNAUTHENTICATED, case
            assert details.reason == "STUDIO_CREDENTIALS_INVALID", case
        # studio-2 is authenticated but sdk-auth is not one of its streams.
        other = (("authorization", f"Bearer studio-2.{wrong_secret}"),)
        try:
            await stub.Publish(iter(requests), metadata=other)
            raise AssertionError("expected PERMISSION_DENIED")
        except grpc.aio.AioRpcError as error:
            details = details_of(error)
        assert details.code == grpc.StatusCode.PERMISSION_DENIED
        assert details.reason == "STUDIO_NOT_AUTHORIZED"
        listed = await stub.ListStreams(ingest_service_pb2.ListStreamsRequest())
        assert "sdk-auth" not in [s.stream_id for s in listed.streams], "nothing was published"


async def test_publish_must_start_with_a_valid_descriptor(media: MediaPlatform) -> None:
    async with grpc.aio.insecure_channel(media.ingest) as channel:
        stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
        for requests, field in (
            (_frames(1), "descriptor"),
            (
                [
                    ingest_service_pb2.PublishRequest(
                        descriptor=ingest_pb2.StreamDescriptor(
                            stream_id="x", codec=ingest_pb2.CODEC_H264
                        )
                    )
                ],
                "descriptor.rendition",
            ),
        ):
            try:
                await stub.Publish(iter(requests), metadata=STUDIO_CREDENTIALS)
                raise AssertionError("expected INVALID_ARGUMENT")
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
            assert details.code == grpc.StatusCode.INVALID_ARGUMENT
            assert field in [v.field for v in details.violations]


async def test_mpegts_over_udp_is_demuxed_too(media: MediaPlatform) -> None:
    url = f"udp://127.0.0.1:{media.udp_port}?pkt_size=1316"
    async with ffmpeg_feed(url, size="320x240"):
        await wait_for_stream(media.ingest, UDP_STREAM)
        async with grpc.aio.insecure_channel(media.ingest) as channel:
            stub = ingest_service_pb2_grpc.MediaServiceStub(channel)
            request = ingest_service_pb2.SubscribeRequest(stream_id=UDP_STREAM, rendition="source")
            call = stub.Subscribe(request)
            messages = await asyncio.wait_for(_take(call, 40), 20)
            call.cancel()
    assert messages[0].codec_parameters.height == 240
    units = [m.access_unit for m in messages[1:]]
    assert units[0].keyframe and sum(u.keyframe for u in units) >= 2
