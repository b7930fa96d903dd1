"""Table fan-out: one table's events to 5,000 WatchTable-like streams, delay and loss.

A hub process runs session_svc's FanoutHub behind a gRPC server stream (WatchTable is not
wired to game_svc yet, so the upstream is an in-process publisher in the same process, as
game_svc's table stream will be). Load generators in their own processes (one per core)
open the streams, wait for every stream's first snapshot, then the table publishes events
at a steady rate. Each event carries its publish time; the generators measure the delay
from publish to receipt and count events lost (a gap in a stream not covered by a
snapshot). A slow stream resynchronised by a snapshot is counted apart: not lost, but
reported as ``resyncs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from bench.harness import Report, percentile
from casino_cli.platform import free_port
from session_svc.fanout import Delivery, FanoutHub

SERVICE = "bench.Fanout"
WATCH = f"/{SERVICE}/Watch"
RAW = f"/{SERVICE}/Raw"
PUBLISH = f"/{SERVICE}/Publish"
EVENT = struct.Struct("<QQ")  # table sequence, publish time (ns since the epoch)
EVENT_MSG = struct.Struct("<cQQQ")  # b"E", stream sequence, table sequence, publish time
SNAPSHOT_MSG = struct.Struct("<cQQ")  # b"S", stream sequence, table sequence
PADDING = b"\0" * 160
"""About the size of a filtered TableEvent on the wire."""
STREAMS_PER_CHANNEL = 250
RAMP_WAVE = 250


# -- the hub process --------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    sequence: int
    published_ns: int


class Publisher:
    """The table's event source: what game_svc's table stream is to session_svc."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.queues: list[asyncio.Queue[Event]] = []

    async def source(self, table_id: str, after: int) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        for missed in self.events[after:] if after else ():
            queue.put_nowait(missed)
        self.queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self.queues.remove(queue)

    async def snapshot(self, table_id: str, key: str) -> tuple[int, int]:
        return len(self.events), len(self.events)

    async def publish(self, count: int, per_s: float) -> None:
        start = time.perf_counter()
        for index in range(count):
            delay = start + index / per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = Event(len(self.events) + 1, time.time_ns())
            self.events.append(event)
            for queue in self.queues:
                queue.put_nowait(event)


async def serve(port: int, queue_size: int) -> None:
    publisher = Publisher()
    hub: FanoutHub[Event, int] = FanoutHub(
        publisher.source, publisher.snapshot, lambda e: e.sequence, queue_size=queue_size
    )

    def encode(delivery: Delivery[Event, int]) -> bytes:
        event = delivery.event
        if event is None:
            return SNAPSHOT_MSG.pack(b"S", delivery.sequence, delivery.snapshot or 0)
        message = EVENT_MSG.pack(b"E", delivery.sequence, event.sequence, event.published_ns)
        return message + PADDING

    async def watch(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        table_id, key = request.decode().split("/", 1)
        async with hub.subscribe(table_id, key) as subscription:
            async for delivery in subscription:
                yield encode(delivery)

    async def raw(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        """The baseline: no hub, each stream its own upstream subscription and no bound."""
        sequence = 1
        yield SNAPSHOT_MSG.pack(b"S", sequence, len(publisher.events))
        async for event in publisher.source("raw", 0):
            sequence += 1
            yield EVENT_MSG.pack(b"E", sequence, event.sequence, event.published_ns) + PADDING

    async def publish(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        count, per_s = json.loads(request)
        await publisher.publish(int(count), float(per_s))
        return b"{}"

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Watch": grpc.unary_stream_rpc_method_handler(watch),
                    "Raw": grpc.unary_stream_rpc_method_handler(raw),
                    "Publish": grpc.unary_unary_rpc_method_handler(publish),
                },
            )
        ]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


# -- a load generator process -----------------------------------------------------------------


@dataclass
class StreamStats:
    covered: int = 0
    lost: int = 0
    resyncs: int = 0
    received: int = 0
    target: int = 0


async def load(
    address: str, method: str, table_id: str, first: int, streams: int, events: int
) -> None:
    """Open ``streams`` streams, print ``ready`` once each has its snapshot, read until every
    stream has the next ``events`` events (or nothing arrives for 30 s), then print the
    figures as JSON."""
    delays_ms: list[float] = []
    stats = [StreamStats() for _ in range(streams)]
    ready = asyncio.Event()
    started = 0
    done = asyncio.Event()
    finished = 0
    progress = [time.monotonic()]
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, streams // STREAMS_PER_CHANNEL))
    ]

    async def read(index: int) -> None:
        nonlocal started, finished
        channel = channels[index % len(channels)]
        call = channel.unary_stream(method)(
            f"{table_id}/p{first + index}".encode(), wait_for_ready=True
        )
        mine = stats[index]
        async for message in call:
            received_ns = time.time_ns()
            if message[:1] == b"S":
                _, _, table_sequence = SNAPSHOT_MSG.unpack(message)
                if mine.received:
                    mine.resyncs += 1
                else:
                    mine.target = table_sequence + events
                    started += 1
                    if started == streams:
                        ready.set()
                mine.covered = max(mine.covered, table_sequence)
            else:
                _, _, table_sequence, published_ns = EVENT_MSG.unpack_from(message)
                delays_ms.append((received_ns - published_ns) / 1e6)
                if table_sequence > mine.covered + 1:
                    mine.lost += table_sequence - mine.covered - 1
                mine.covered = max(mine.covered, table_sequence)
            mine.received += 1
            progress[0] = time.monotonic()
            if mine.covered >= mine.target:
                finished += 1
                if finished == streams:
                    done.set()
                call.cancel()
                return

    # Players arrive in waves, not all in one millisecond: a burst of thousands of new calls
    # overflows gRPC core's queue of calls the server has not picked up yet (about 1,000).
    tasks: list[asyncio.Task[None]] = []
    for wave in range(0, streams, RAMP_WAVE):
        tasks += [asyncio.create_task(read(i)) for i in range(wave, min(streams, wave + RAMP_WAVE))]
        deadline = time.monotonic() + 60
        while started < min(streams, wave + RAMP_WAVE) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    if not ready.is_set():
        print(f"only {started} of {streams} streams started", file=sys.stderr, flush=True)
        raise SystemExit(1)
    print("ready", flush=True)
    progress[0] = time.monotonic()
    while not done.is_set() and time.monotonic() - progress[0] < 30:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    result = {
        "delays_ms": delays_ms,
        "lost": sum(s.lost + max(0, s.target - s.covered) for s in stats),
        "resyncs": sum(s.resyncs for s in stats),
        "complete": sum(1 for s in stats if s.covered >= s.target),
    }
    print(json.dumps(result), flush=True)


# -- the coordinator --------------------------------------------------------------------------


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.fanout",
        *args,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 28,  # a generator's result line holds every delay it measured
    )


@contextlib.asynccontextmanager
async def hub_process(queue_size: int) -> AsyncIterator[str]:
    port = free_port()
    process = await _spawn("serve", str(port), str(queue_size))
    address = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            await asyncio.wait_for(channel.channel_ready(), 15)
        yield address
    finally:
        process.terminate()
        await process.wait()


@dataclass(frozen=True)
class Run:
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    resyncs: int
    received: int


async def one_run(
    address: str,
    method: str,
    table_id: str,
    streams: int,
    events: int,
    per_s: float,
    generators: int,
) -> Run:
    share = streams // generators
    procs = [
        await _spawn("load", address, method, table_id, str(i * share), str(share), str(events))
        for i in range(generators)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 180)
        if line.strip() != b"ready":
            raise RuntimeError(f"load generator did not start: {line!r}")
    async with grpc.aio.insecure_channel(address) as channel:
        await channel.unary_unary(PUBLISH)(json.dumps([events, per_s]).encode(), timeout=600)
    delays: list[float] = []
    lost = resyncs = 0
    for proc in procs:
        assert proc.stdout is not None
        result = json.loads(await proc.stdout.readline())
        await proc.wait()
        delays += result["delays_ms"]
        lost += result["lost"]
        resyncs += result["resyncs"]
    return Run(
        p50_ms=percentile(delays, 0.50),
        p99_ms=percentile(delays, 0.99),
        max_ms=max(delays, default=float("nan")),
        lost=lost,
        resyncs=resyncs,
        received=len(delays),
    )


async def main(quick: bool) -> Report:
    report = Report("fanout")
    streams, per_s = 5000, 1.0
    events, runs = (15, 1) if quick else (40, 3)
    generators = max(1, min(2, os.cpu_count() or 1))
    async with hub_process(queue_size=256) as address:
        await one_run(address, WATCH, "warmup", streams, 5, per_s, generators)
        hub, raw = [], []
        for i in range(runs):  # interleaved, so both see the same machine load
            hub.append(await one_run(address, WATCH, f"t{i}", streams, events, per_s, generators))
            raw.append(await one_run(address, RAW, f"r{i}", streams, events, per_s, generators))
    median = sorted(hub, key=lambda r: r.p99_ms)[len(hub) // 2]
    baseline = sorted(raw, key=lambda r: r.p99_ms)[len(raw) // 2]
    report.figures.update(
        {
            "streams": float(streams),
            "events_per_s": per_s,
            "messages_per_s": streams * per_s,
            "p50_ms": round(median.p50_ms, 2),
            "p99_ms": round(median.p99_ms, 2),
            "max_ms": round(median.max_ms, 2),
            "events_lost": float(sum(r.lost for r in hub)),
            "resyncs": float(sum(r.resyncs for r in hub)),
            "events_received": float(median.received),
            "baseline_p50_ms": round(baseline.p50_ms, 2),
            "baseline_p99_ms": round(baseline.p99_ms, 2),
            "baseline_events_lost": float(sum(r.lost for r in raw)),
        }
    )
    report.targets = {"p99_ms": {"<=": 150.0}, "events_lost": {"<=": 0.0}}
    report.notes.append(
        f"{runs} run(s) of {events} events at {per_s:g}/s to {streams} streams from "
        f"{generators} load generator process(es); figures of the median run by p99, "
        "losses and resyncs summed over all runs; baseline: the same gRPC streams without "
        "the hub (one unbounded upstream queue per stream), interleaved with the hub runs"
    )
    return report


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2]), int(sys.argv[3])))
    else:
        address, method, table_id, first, streams, events = sys.argv[2:8]
        asyncio.run(load(address, method, table_id, int(first), int(streams), int(events)))
