"""Viewer metrics for dashboards: viewers, and each viewer's RTT, jitter, loss and bytes.

Observable gauges read the figures the relay refreshes from RTCP every second, so a scrape
never waits on a peer connection. Exported like every metric of the kit (Prometheus on
``CASINO_METRICS_PORT``, OTLP when configured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from edge_relay.relay import Relay
from edge_relay.viewer import Viewer

Observed = Iterable[Observation]


def register(relay: Relay) -> None:
    meter = metrics.get_meter("edge_relay")

    def per_viewer(
        read: Callable[[Viewer], float],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Observed:
            return [
                Observation(
                    read(v),
                    {"viewer_id": v.viewer_id, "stream_id": v.stream_id, "rendition": v.rendition},
                )
                for v in list(relay.viewers.values())
            ]

        return observe

    meter.create_observable_gauge(
        "relay.viewers",
        [lambda options: [Observation(len(relay.viewers))]],
        description="connected WebRTC viewers",
    )
    meter.create_observable_gauge(
        "relay.viewer.rtt", [per_viewer(lambda v: v.rtcp[0])], unit="ms",
        description="round-trip time from RTCP receiver reports",
    )  # fmt: skip
    meter.create_observable_gauge(
        "relay.viewer.jitter", [per_viewer(lambda v: v.rtcp[1])], unit="ms",
        description="interarrival jitter reported by the viewer",
    )  # fmt: skip
    meter.create_observable_gauge(
        "relay.viewer.packets_lost", [per_viewer(lambda v: float(v.rtcp[2]))],
        description="cumulative packets lost reported by the viewer",
    )  # fmt: skip
    meter.create_observable_gauge(
        "relay.viewer.fraction_lost", [per_viewer(lambda v: v.rtcp[3])],
        description="fraction of packets lost since the previous report",
    )  # fmt: skip
    meter.create_observable_counter(
        "relay.viewer.bytes_sent", [per_viewer(lambda v: float(v.rtcp[5]))], unit="By",
        description="RTP payload bytes sent to the viewer",
    )  # fmt: skip
