"""gRPC adapters: RelayAdminService over the relay, MediaService over its fan-out (chaining)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from casino.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from casino.relay.v1 import relay_pb2, relay_service_pb2, relay_service_pb2_grpc
from casino_kit.errors import FieldViolation, InvalidArgument
from casino_kit.media.hub import StreamEnded
from casino_kit.media.messages import subscription_messages
from casino_kit.validation import Violations
from edge_relay.relay import Relay

MAX_PAGE = 500
STATES = {
    "connecting": relay_pb2.VIEWER_STATE_CONNECTING,
    "connected": relay_pb2.VIEWER_STATE_CONNECTED,
    "disconnected": relay_pb2.VIEWER_STATE_DISCONNECTED,
}


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _page(size: int, token: str) -> tuple[int, int]:
    violations = Violations()
    if size < 0 or size > MAX_PAGE:
        violations.add("page_size", f"must be 0 to {MAX_PAGE}")
    if token and not token.isdigit():
        violations.add("page_token", "is not a token from this list")
    violations.raise_if_any()
    return int(token or 0), size or 50


class RelayAdminServicer(relay_service_pb2_grpc.RelayAdminServiceServicer):
    """Viewers and statistics, for operators and dashboards."""

    def __init__(self, relay: Relay, upstream: str) -> None:
        self.relay = relay
        self.upstream = upstream

    async def ListViewers(
        self, request: relay_service_pb2.ListViewersRequest, context: grpc.aio.ServicerContext
    ) -> relay_service_pb2.ListViewersResponse:
        start, size = _page(request.page_size, request.page_token)
        viewers = sorted(
            (
                v
                for v in self.relay.viewers.values()
                if not request.stream_id or v.stream_id == request.stream_id
            ),
            key=lambda v: v.connected_at,
        )
        page = viewers[start : start + size]
        return relay_service_pb2.ListViewersResponse(
            viewers=[
                relay_pb2.Viewer(
                    viewer_id=v.viewer_id,
                    stream_id=v.stream_id,
                    rendition=v.rendition,
                    state=STATES[v.state],
                    connected_at=_timestamp(v.connected_at),
                )
                for v in page
            ],
            next_page_token=str(start + size) if start + size < len(viewers) else "",
        )

    async def GetViewerStats(
        self, request: relay_service_pb2.GetViewerStatsRequest, context: grpc.aio.ServicerContext
    ) -> relay_service_pb2.GetViewerStatsResponse:
        violations = Violations()
        violations.require(request, "viewer_id")
        violations.raise_if_any()
        f = await self.relay.figures(request.viewer_id)
        return relay_service_pb2.GetViewerStatsResponse(
            stats=relay_pb2.ViewerStats(
                viewer_id=f.viewer_id,
                rendition=f.rendition,
                rtt_ms=f.rtt_ms,
                jitter_ms=f.jitter_ms,
                packets_lost=f.packets_lost,
                fraction_lost=f.fraction_lost,
                bitrate_bps=f.bitrate_bps,
                packets_sent=f.packets_sent,
                bytes_sent=f.bytes_sent,
                measured_at=_timestamp(f.measured_at),
            )
        )

    async def GetRelayStats(
        self, request: relay_service_pb2.GetRelayStatsRequest, context: grpc.aio.ServicerContext
    ) -> relay_service_pb2.GetRelayStatsResponse:
        p50, p99 = self.relay.delay_percentiles_us()
        streams = self.relay.fanout.hub.streams.values()
        downstream = sum(1 for s in streams for sub in s.subscribers if sub.downstream_relay)
        return relay_service_pb2.GetRelayStatsResponse(
            stats=relay_pb2.RelayStats(
                relay_id=self.relay.relay_id,
                upstream=self.upstream,
                viewers=len(self.relay.viewers),
                downstream_relays=downstream,
                upstream_streams=len(self.relay.fanout.feeds),
                bitrate_out_bps=sum(s.bitrate_bps() * len(s.subscribers) for s in streams),
                relay_delay_p50_us=p50,
                relay_delay_p99_us=p99,
                started_at=_timestamp(self.relay.started_at),
            )
        )


class MediaServicer(ingest_service_pb2_grpc.MediaServiceServicer):
    """Subscribe and ListStreams for further relays, exactly as the ingest serves them."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def Publish(
        self,
        request_iterator: AsyncIterator[ingest_service_pb2.PublishRequest],
        context: grpc.aio.ServicerContext,
    ) -> ingest_service_pb2.PublishResponse:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "a relay takes its media from upstream: publish to the ingest",
        )
        raise AssertionError("unreachable")

    async def Subscribe(
        self, request: ingest_service_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ingest_service_pb2.SubscribeResponse]:
        violations = Violations()
        violations.require(request, "stream_id", "rendition")
        violations.raise_if_any()
        sub = await self.relay.fanout.subscribe(request.stream_id, request.rendition, True)
        sub.downstream_relay = True
        try:
            async for message in subscription_messages(sub):
                yield message
        except StreamEnded:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the upstream stream ended")

    async def ListStreams(
        self, request: ingest_service_pb2.ListStreamsRequest, context: grpc.aio.ServicerContext
    ) -> ingest_service_pb2.ListStreamsResponse:
        if request.page_size < 0 or request.page_size > MAX_PAGE:
            raise InvalidArgument([FieldViolation("page_size", f"must be 0 to {MAX_PAGE}")])
        # A relay holds only the streams someone watches: the full list is upstream's.
        stub = ingest_service_pb2_grpc.MediaServiceStub(self.relay.fanout.channel)
        response: ingest_service_pb2.ListStreamsResponse = await stub.ListStreams(
            request, timeout=5
        )
        return response
