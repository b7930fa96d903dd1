"""Rendition choice from a viewer's RTCP figures: pure, so the policy is tested alone.

aiortc has no simulcast and the relay never encodes, so adaptation means moving a viewer to
another rendition the ingest already encodes; the move happens at that rendition's next
keyframe. Down at once when loss or RTT is too high; up one step after ``up_after`` good
checks in a row, so a viewer does not oscillate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    max_fraction_lost: float = 0.05
    max_rtt_ms: float = 400.0
    up_after: int = 5


@dataclass(frozen=True)
class Decision:
    rendition: str
    good_checks: int


def choose(
    policy: Policy,
    ladder: list[str],
    current: str,
    fraction_lost: float,
    rtt_ms: float,
    good_checks: int,
) -> Decision:
    """The rendition for the viewer now. ``ladder`` is ordered best (tallest) first."""
    if current not in ladder:
        return Decision(current, 0)
    step = ladder.index(current)
    if fraction_lost > policy.max_fraction_lost or rtt_ms > policy.max_rtt_ms:
        return Decision(ladder[min(step + 1, len(ladder) - 1)], 0)
    good = fraction_lost <= policy.max_fraction_lost / 4 and rtt_ms <= policy.max_rtt_ms / 2
    if not good:
        return Decision(current, 0)
    if good_checks + 1 >= policy.up_after and step > 0:
        return Decision(ladder[step - 1], 0)
    return Decision(current, good_checks + 1)
