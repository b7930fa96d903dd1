"""Round metrics for dashboards: phase durations, settlement time, bets taken and refused.

Exported like every metric of the kit (Prometheus on ``CASINO_METRICS_PORT``, OTLP when
configured); attributes are the game and the phase or reason, never ids, so series stay few.
"""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("game_svc")
_phase = _meter.create_histogram(
    "game.round.phase.duration", unit="s", description="time a round spent in a phase"
)
_settle = _meter.create_histogram(
    "game.round.settlement.duration",
    unit="s",
    description="payouts computed, wallet batch committed, RoundSettled saved",
)
_bets = _meter.create_counter("game.bets", description="bets answered, by status and reason")


def phase_ended(game: str, phase: str, seconds: float) -> None:
    _phase.record(seconds, {"game": game, "phase": phase})


def settled(game: str, seconds: float) -> None:
    _settle.record(seconds, {"game": game})


def bet_answered(game: str, reason: str) -> None:
    _bets.add(1, {"game": game, "status": "rejected" if reason else "accepted", "reason": reason})
