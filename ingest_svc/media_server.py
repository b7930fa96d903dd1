"""MediaService: Protobuf in and out of the hub, nothing more. Never decodes or encodes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from casino.ingest.v1 import ingest_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from casino_kit.errors import FieldViolation, InvalidArgument
from casino_kit.media.gop import Params
from casino_kit.media.hub import MediaHub, MediaStream, StreamEnded
from casino_kit.media.messages import subscription_messages
from casino_kit.validation import Violations
from ingest_svc.studios import StudioAuth

MAX_PAGE = 500


def _descriptor_params(d: ingest_pb2.StreamDescriptor, time_base: tuple[int, int]) -> Params:
    return Params(
        stream_id=d.stream_id,
        rendition=d.rendition,
        codec=d.codec,
        width=d.width,
        height=d.height,
        extradata=d.extradata,
        time_base_num=time_base[0],
        time_base_den=time_base[1],
        sample_rate=d.sample_rate,
        channels=d.channels,
    )


def check_descriptor(request: ingest_service_pb2.PublishRequest) -> ingest_pb2.StreamDescriptor:
    if request.WhichOneof("message") != "descriptor":
        raise InvalidArgument([FieldViolation("descriptor", "the first message must be one")])
    d = request.descriptor
    violations = Violations()
    violations.require(d, "stream_id", "rendition", "codec")
    if d.codec == ingest_pb2.CODEC_H264:
        violations.require(d, "width", "height", "extradata")
    if d.codec == ingest_pb2.CODEC_OPUS:
        violations.require(d, "sample_rate", "channels")
    prefixed = Violations()
    for v in violations.items:
        prefixed.add(f"descriptor.{v.field}", v.description)
    prefixed.raise_if_any()
    return d


def check_frame(request: ingest_service_pb2.PublishRequest) -> ingest_pb2.EncodedFrame:
    if request.WhichOneof("message") != "frame":
        raise InvalidArgument([FieldViolation("frame", "every message after the first is one")])
    violations = Violations()
    violations.require(request, "frame.data", "frame.time_base_num", "frame.time_base_den")
    violations.raise_if_any()
    return request.frame


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def stream_info(stream: MediaStream) -> ingest_pb2.StreamInfo:
    params = stream.params
    return ingest_pb2.StreamInfo(
        stream_id=stream.stream_id,
        rendition=stream.rendition,
        table_id=stream.table_id,
        codec=params.codec if params else 0,  # type: ignore[arg-type]
        width=params.width if params else 0,
        height=params.height if params else 0,
        publisher_id=stream.publisher_id,
        started_at=_timestamp(stream.started_at),
        last_frame_at=_timestamp(stream.last_frame_at),
        bitrate_bps=stream.bitrate_bps(),
        subscriber_count=len(stream.subscribers),
    )


def list_streams(
    hub: MediaHub, request: ingest_service_pb2.ListStreamsRequest
) -> ingest_service_pb2.ListStreamsResponse:
    if request.page_size < 0 or request.page_size > MAX_PAGE:
        raise InvalidArgument([FieldViolation("page_size", f"must be 0 to {MAX_PAGE}")])
    if request.page_token and not request.page_token.isdigit():
        raise InvalidArgument([FieldViolation("page_token", "is not a token from this list")])
    size = request.page_size or 50
    start = int(request.page_token or 0)
    streams = sorted(
        (
            s
            for s in hub.streams.values()
            if s.params is not None and (not request.table_id or s.table_id == request.table_id)
        ),
        key=lambda s: (s.stream_id, s.rendition),
    )
    page = streams[start : start + size]
    more = start + size < len(streams)
    return ingest_service_pb2.ListStreamsResponse(
        streams=[stream_info(s) for s in page],
        next_page_token=str(start + size) if more else "",
    )


class MediaServicer(ingest_service_pb2_grpc.MediaServiceServicer):
    """Publish into the hub (studios by their own credentials), Subscribe out of it;
    ListStreams reads it."""

    def __init__(self, hub: MediaHub, studios: StudioAuth) -> None:
        self.hub = hub
        self.studios = studios

    async def Publish(
        self,
        request_iterator: AsyncIterator[ingest_service_pb2.PublishRequest],
        context: grpc.aio.ServicerContext,
    ) -> ingest_service_pb2.PublishResponse:
        studio = self.studios.authenticate(context.invocation_metadata() or ())
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None:
            raise InvalidArgument([FieldViolation("descriptor", "is required")])
        descriptor = check_descriptor(first)
        self.studios.authorize(studio, descriptor.stream_id)
        stream: MediaStream | None = None
        frames = size = 0
        try:
            async for request in requests:
                frame = check_frame(request)
                time_base = (frame.time_base_num, frame.time_base_den)
                if stream is None:
                    params = _descriptor_params(descriptor, time_base)
                    stream = self.hub.claim(params, studio.studio_id, descriptor.table_id)
                elif stream.params is not None and time_base != (
                    stream.params.time_base_num,
                    stream.params.time_base_den,
                ):
                    stream.set_params(_descriptor_params(descriptor, time_base))
                stream.push(
                    frame.data,
                    frame.keyframe,
                    frame.pts,
                    frame.dts or frame.pts,
                    frame.capture_time_us,
                )
                frames += 1
                size += len(frame.data)
        finally:
            if stream is not None:
                self.hub.release(stream)
        return ingest_service_pb2.PublishResponse(frames_received=frames, bytes_received=size)

    async def Subscribe(
        self,
        request: ingest_service_pb2.SubscribeRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[ingest_service_pb2.SubscribeResponse]:
        violations = Violations()
        violations.require(request, "stream_id", "rendition")
        violations.raise_if_any()
        sub = self.hub.subscribe(request.stream_id, request.rendition)
        try:
            async for message in subscription_messages(sub):
                yield message
        except StreamEnded:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the stream's publisher went away")

    async def ListStreams(
        self,
        request: ingest_service_pb2.ListStreamsRequest,
        context: grpc.aio.ServicerContext,
    ) -> ingest_service_pb2.ListStreamsResponse:
        return list_streams(self.hub, request)
