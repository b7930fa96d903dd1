"""The players' accepted bets per round, in the shared store.

Bet intake records each accepted bet here (and so tells the player's stream, on whichever
node it is, through the store's pub/sub); the stream reads them back to turn game_svc's
RoundSettled and RoundVoided into the player's BetSettled and BetRefunded with their client
bet ids, and to list the player's bets in a snapshot.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence

from casino.session.v1 import session_pb2
from session_svc.store import Store

ROUND_TTL_S = 24 * 3600.0
"""Long enough for any round to settle or be voided."""


def _encode(bets: Sequence[session_pb2.BetAccepted]) -> str:
    return json.dumps([base64.b64encode(b.SerializeToString()).decode() for b in bets])


def _decode(raw: str | None) -> list[session_pb2.BetAccepted]:
    if raw is None:
        return []
    return [session_pb2.BetAccepted.FromString(base64.b64decode(b)) for b in json.loads(raw)]


class BetBook:
    """Accepted bets by (round, player)."""

    def __init__(self, store: Store, key: Callable[..., str]) -> None:
        self.store = store
        self.key = key

    def _key(self, round_id: str, player_id: str) -> str:
        return self.key("bets", round_id, player_id)

    async def record(self, player_id: str, accepted: Sequence[session_pb2.BetAccepted]) -> None:
        """Add accepted bets of one round (a bet id already recorded is kept once)."""
        if not accepted:
            return
        key = self._key(accepted[0].round_id, player_id)
        while True:
            raw = await self.store.get(key)
            bets = {b.bet_id: b for b in _decode(raw)}
            bets.update({b.bet_id: b for b in accepted})
            merged = _encode(list(bets.values()))
            if await self.store.compare_and_set(key, raw, merged, ROUND_TTL_S):
                return

    async def accepted(self, round_id: str, player_id: str) -> list[session_pb2.BetAccepted]:
        return _decode(await self.store.get(self._key(round_id, player_id)))

    async def accepted_many(
        self, round_id: str, player_ids: Sequence[str]
    ) -> dict[str, list[session_pb2.BetAccepted]]:
        """The bets of each player who has any in the round, in one store read."""
        raws = await self.store.get_many([self._key(round_id, p) for p in player_ids])
        return {p: _decode(raw) for p, raw in zip(player_ids, raws, strict=True) if raw}
