"""Session metrics: the players this process serves, the figure its autoscaler divides.

Exported like every metric of the kit (Prometheus on ``CASINO_METRICS_PORT`` as
``session_active_players``, OTLP when configured).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from session_svc.fanout import FanoutHub


def register(hub: FanoutHub[Any, Any]) -> None:
    def active(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(len(hub.connected_keys()))]

    metrics.get_meter("session_svc").create_observable_gauge(
        "session.active_players",
        [active],
        description="players with a live WatchTable stream on this process",
    )
