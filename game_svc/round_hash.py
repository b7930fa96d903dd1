"""The round hash that reconciles a round between a studio and the platform.

As ``casino.common.v1.RoundResult.round_hash`` defines it: the lowercase hex SHA-256 of the
UTF-8 string made of the round reference (the studio round id for studio tables, the
round id otherwise), then ``|C<target>.<seat>.<hand>.<rank>.<suit>`` for every card in
deal-index order (enum numbers, face-down cards by their revealed value), then, for
roulette, ``|W<pocket>``. A studio round "R-77" landing on 17 hashes "R-77|W17".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from game_svc.cards import Card


class Target(IntEnum):
    """Who a card goes to; values equal ``casino.common.v1.CardTarget``."""

    PLAYER = 1
    BANKER = 2
    DEALER = 3
    SEAT = 4
    BURN = 5


@dataclass(frozen=True)
class DealtCard:
    """One card of a round with its place in the deal order (from 1) and its target."""

    deal_index: int
    target: Target
    card: Card
    seat: int = 0
    hand: int = 0


def preimage(reference: str, dealt: Iterable[DealtCard] = (), pocket: int | None = None) -> str:
    if not reference:
        raise ValueError("a round hash needs the round reference")
    ordered = sorted(dealt, key=lambda d: d.deal_index)
    indexes = [d.deal_index for d in ordered]
    if len(set(indexes)) != len(indexes):
        raise ValueError("two cards share a deal index")
    parts = [reference]
    parts += [
        f"C{int(d.target)}.{d.seat}.{d.hand}.{int(d.card.rank)}.{int(d.card.suit)}" for d in ordered
    ]
    if pocket is not None:
        parts.append(f"W{pocket}")
    return "|".join(parts)


def round_hash(reference: str, dealt: Iterable[DealtCard] = (), pocket: int | None = None) -> str:
    """The lowercase hex SHA-256 of the round's preimage."""
    return hashlib.sha256(preimage(reference, dealt, pocket).encode()).hexdigest()
