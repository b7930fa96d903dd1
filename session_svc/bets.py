"""The players' accepted bets per round, in the shared store.

Bet intake records each accepted bet here (and so tells the player's stream, on whichever
node it is, through the store's pub/sub); the stream reads them back to turn game_svc's
RoundSettled and RoundVoided into the player's BetSettled and BetRefunded with their client
bet ids, and to list the player's bets in a snapshot.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

from casino.session.v1 import session_pb2
from session_svc.store import Store

ROUND_TTL_S = 24 * 3600.0
"""Long enough for any round to settle or be voided."""


def _encode(bet: session_pb2.BetAccepted) -> str:
    return base64.b64encode(bet.SerializeToString()).decode()


def _decode(raw: list[str]) -> list[session_pb2.BetAccepted]:
    """The bets of a list in the order first recorded, each once (a retried call records
    its bets again)."""
    bets: dict[str, session_pb2.BetAccepted] = {}
    for item in raw:
        bet = session_pb2.BetAccepted.FromString(base64.b64decode(item))
        bets.setdefault(bet.bet_id, bet)
    return list(bets.values())


class BetBook:
    """Accepted bets by (round, player): a list per pair that a record only appends to, so
    concurrent calls of one player never contend."""

    def __init__(self, store: Store, key: Callable[..., str]) -> None:
        self.store = store
        self.key = key

    def _key(self, round_id: str, player_id: str) -> str:
        return self.key("bet-list", round_id, player_id)

    async def record(self, player_id: str, accepted: Sequence[session_pb2.BetAccepted]) -> None:
        """Add accepted bets of one round (a bet id already recorded is kept once)."""
        if accepted:
            key = self._key(accepted[0].round_id, player_id)
            await self.store.append(key, [_encode(b) for b in accepted], ROUND_TTL_S)

    async def accepted(self, round_id: str, player_id: str) -> list[session_pb2.BetAccepted]:
        (raw,) = await self.store.lists([self._key(round_id, player_id)])
        return _decode(raw)

    async def accepted_many(
        self, round_id: str, player_ids: Sequence[str]
    ) -> dict[str, list[session_pb2.BetAccepted]]:
        """The bets of each player who has any in the round, in one store round trip."""
        raws = await self.store.lists([self._key(round_id, p) for p in player_ids])
        return {p: _decode(raw) for p, raw in zip(player_ids, raws, strict=True) if raw}
