"""The accepted-bet book on both stores: what settlements and snapshots read back."""

from __future__ import annotations

from casino.session.v1 import session_pb2
from session_svc.bets import BetBook
from session_svc.store import Store


def accepted(bet_id: str, round_id: str = "r1") -> session_pb2.BetAccepted:
    return session_pb2.BetAccepted(bet_id=bet_id, client_bet_id=f"c-{bet_id}", round_id=round_id)


async def test_bets_are_kept_per_round_and_player_once_each(store: Store, prefix: str) -> None:
    book = BetBook(store, lambda *parts: prefix + ":".join(parts))
    await book.record("alice", [accepted("b1"), accepted("b2")])
    await book.record("alice", [accepted("b2"), accepted("b3")])  # b2 re-sent: kept once
    await book.record("bob", [accepted("b9", round_id="r2")])
    assert [b.bet_id for b in await book.accepted("r1", "alice")] == ["b1", "b2", "b3"]
    assert await book.accepted("r1", "bob") == []
    found = await book.accepted_many("r1", ["alice", "bob", "carol"])
    assert list(found) == ["alice"]
    assert found["alice"][2].client_bet_id == "c-b3"
