"""The media contract's messages to and from the hub's types, for every MediaService server
(the ingest and chained relays) and every subscriber (relays)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from casino.ingest.v1 import ingest_pb2, ingest_service_pb2
from casino_kit.media.gop import Params, Unit
from casino_kit.media.hub import Subscription


def params_message(params: Params) -> ingest_pb2.CodecParameters:
    return ingest_pb2.CodecParameters(
        stream_id=params.stream_id,
        rendition=params.rendition,
        codec=params.codec,  # type: ignore[arg-type]
        width=params.width,
        height=params.height,
        extradata=params.extradata,
        time_base_num=params.time_base_num,
        time_base_den=params.time_base_den,
        sample_rate=params.sample_rate,
        channels=params.channels,
    )


def params_of(message: ingest_pb2.CodecParameters) -> Params:
    return Params(
        stream_id=message.stream_id,
        rendition=message.rendition,
        codec=message.codec,
        width=message.width,
        height=message.height,
        extradata=message.extradata,
        time_base_num=message.time_base_num,
        time_base_den=message.time_base_den,
        sample_rate=message.sample_rate,
        channels=message.channels,
    )


def unit_message(unit: Unit) -> ingest_pb2.AccessUnit:
    return ingest_pb2.AccessUnit(
        sequence=unit.sequence,
        data=unit.data,
        keyframe=unit.keyframe,
        pts=unit.pts,
        dts=unit.dts,
        capture_time_us=unit.capture_time_us,
        discontinuity=unit.discontinuity,
    )


async def subscription_messages(
    sub: Subscription,
) -> AsyncIterator[ingest_service_pb2.SubscribeResponse]:
    """Parameters first, then access units; raises ``StreamEnded`` when the stream ends.

    The subscription is closed however the stream stops.
    """
    try:
        while True:
            item = await sub.next()
            if isinstance(item, Params):
                yield ingest_service_pb2.SubscribeResponse(codec_parameters=params_message(item))
            else:
                yield ingest_service_pb2.SubscribeResponse(access_unit=unit_message(item))
    finally:
        sub.close()
