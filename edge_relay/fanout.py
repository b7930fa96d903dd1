"""One upstream Subscribe per stream, fanned out to every viewer and downstream relay.

The first viewer (or downstream relay) of a (stream_id, rendition) opens the upstream
subscription; it feeds this relay's own hub, whose bounded per-subscriber cursors do the
fan-out. When the last subscriber has been gone for ``linger_s`` the upstream call ends.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from casino.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from casino_kit.errors import NotFound, Unavailable
from casino_kit.logs import get_logger
from casino_kit.media.hub import MediaHub, MediaStream, Subscription
from casino_kit.media.messages import params_of

log = get_logger(__name__)


class Feed:
    """The upstream subscription of one (stream_id, rendition), feeding the relay's hub."""

    def __init__(self, fanout: Fanout, stream_id: str, rendition: str) -> None:
        self.fanout = fanout
        self.stream_id = stream_id
        self.rendition = rendition
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        stub = ingest_service_pb2_grpc.MediaServiceStub(self.fanout.channel)
        request = ingest_service_pb2.SubscribeRequest(
            stream_id=self.stream_id, rendition=self.rendition
        )
        stream: MediaStream | None = None
        try:
            async for message in stub.Subscribe(request):
                if message.WhichOneof("message") == "codec_parameters":
                    params = params_of(message.codec_parameters)
                    if stream is None:
                        stream = self.fanout.hub.claim(params, self.fanout.upstream_addr)
                        self.fanout.watch(stream, self)
                    else:
                        stream.set_params(params)
                    if not self.ready.done():
                        self.ready.set_result(None)
                elif stream is not None:
                    unit = message.access_unit
                    stream.push(
                        unit.data,
                        unit.keyframe,
                        unit.pts,
                        unit.dts,
                        unit.capture_time_us,
                        sequence=unit.sequence,
                    )
        except grpc.aio.AioRpcError as error:
            self._fail(error)
            log.info(
                "upstream subscription ended", stream_id=self.stream_id, code=str(error.code())
            )
        finally:
            self._fail(ConnectionError("upstream ended"))
            if stream is not None:
                self.fanout.hub.release(stream)
            self.fanout.feeds.pop((self.stream_id, self.rendition), None)

    def _fail(self, error: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved here: a feed nobody waits for is not an error

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class Fanout:
    """This relay's hub plus the upstream feeds that fill it on demand."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        upstream_addr: str,
        subscriber_queue: int = 120,
        linger_s: float = 5.0,
    ) -> None:
        self.channel = channel
        self.upstream_addr = upstream_addr
        self.hub = MediaHub(subscriber_queue=subscriber_queue, grace_s=0.0)
        self.feeds: dict[tuple[str, str], Feed] = {}
        self.linger_s = linger_s
        self.idle_checks: set[asyncio.Task[None]] = set()

    async def subscribe(self, stream_id: str, rendition: str, with_gop: bool) -> Subscription:
        """Subscribe to a stream, opening its upstream feed first if nobody watches it yet."""
        key = (stream_id, rendition)
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(self, stream_id, rendition)
        try:
            await asyncio.wait_for(asyncio.shield(feed.ready), 10.0)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    "STREAM_NOT_FOUND",
                    f"no live media stream {stream_id}/{rendition}",
                    metadata={"stream_id": stream_id, "rendition": rendition},
                ) from None
            raise Unavailable("UPSTREAM_UNAVAILABLE", f"upstream: {error.details()}") from None
        except (TimeoutError, ConnectionError):
            raise Unavailable("UPSTREAM_UNAVAILABLE", "upstream sent no codec parameters") from None
        return self.hub.subscribe(stream_id, rendition, with_gop=with_gop)

    def watch(self, stream: MediaStream, feed: Feed) -> None:
        task = asyncio.ensure_future(self._close_when_idle(stream, feed))
        self.idle_checks.add(task)
        task.add_done_callback(self.idle_checks.discard)

    async def _close_when_idle(self, stream: MediaStream, feed: Feed) -> None:
        idle_since: float | None = None
        loop = asyncio.get_running_loop()
        while not feed.task.done():
            await asyncio.sleep(min(1.0, self.linger_s))
            if stream.subscribers:
                idle_since = None
            elif idle_since is None:
                idle_since = loop.time()
            elif loop.time() - idle_since >= self.linger_s:
                log.info("closing idle upstream", stream_id=stream.stream_id)
                await feed.stop()

    async def stop(self) -> None:
        for task in list(self.idle_checks):
            task.cancel()
        await asyncio.gather(*(feed.stop() for feed in list(self.feeds.values())))
        self.hub.stop()
