"""The lobby and the seats: who is at which table, in which blackjack seat, on every node.

Table configuration and live round state belong to game_svc; what belongs to the session
service is who joined: a presence set per table (players count) and one key per blackjack
seat, claimed atomically in the shared store, so two session processes on one Redis never
give a seat twice. A seat is held while its player watches the table and for a grace period
after a disconnect (a reconnect within it finds the seat still theirs); bet behind (no seat)
is unlimited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from casino.common.v1 import common_pb2, table_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino_kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from session_svc.store import Store
from session_svc.upstream import relayed


@dataclass(frozen=True)
class SeatingPolicy:
    grace_s: float = 60.0
    """How long a seat outlives its player's last sign of life (a join or a watching stream)."""
    presence_s: float = 1800.0
    """How long a joined player counts as at the table without a watching stream."""
    capacity: int = 10_000
    """Players at one table (seated, behind or watching); a newcomer past it gets TABLE_FULL.
    Two joins racing for the last place may both get in: it bounds the fan-out, not money."""


def open_to(config: game_pb2.TableConfig, jurisdiction: str) -> bool:
    """A table lists jurisdictions ("CA" covers "CA-ON"); none listed means open to all."""
    if not config.jurisdictions:
        return True
    country = jurisdiction.split("-", 1)[0]
    return jurisdiction in config.jurisdictions or country in config.jurisdictions


class Seating:
    """Membership and seats in the shared store; ``clock`` is wall time in seconds."""

    def __init__(
        self,
        store: Store,
        key: Callable[..., str],
        policy: SeatingPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.key = key
        self.policy = policy
        self.clock = clock

    def _seat(self, table_id: str, seat: int) -> str:
        return self.key("seat", table_id, str(seat))

    def _member(self, table_id: str, player_id: str) -> str:
        return self.key("at", table_id, player_id)

    def _players(self, table_id: str) -> str:
        return self.key("players", table_id)

    async def seat_of(self, table_id: str, player_id: str) -> int | None:
        """The player's seat at the table (0: none), or None when not at the table."""
        raw = await self.store.get(self._member(table_id, player_id))
        return None if raw is None else int(raw)

    async def _claim(self, table_id: str, seat: int, player_id: str) -> None:
        key, grace = self._seat(table_id, seat), self.policy.grace_s
        while True:
            if await self.store.set_if_absent(key, player_id, grace):
                return
            holder = await self.store.get(key)
            if holder is not None and holder != player_id:
                raise FailedPrecondition(
                    "SEAT_TAKEN", f"seat {seat} is taken", metadata={"seat": str(seat)}
                )
            if holder == player_id and await self.store.compare_and_set(
                key, player_id, player_id, grace
            ):
                return  # already the player's: the reservation is renewed

    async def join(self, table_id: str, player_id: str, seat: int) -> None:
        previous = await self.seat_of(table_id, player_id)
        if previous is None:
            players = await self.store.presence_count(self._players(table_id), self.clock())
            if players >= self.policy.capacity:
                raise FailedPrecondition(
                    "TABLE_FULL", f"table {table_id} has its {self.policy.capacity} players"
                )
        if seat:
            await self._claim(table_id, seat, player_id)
        if previous and previous != seat:
            await self.store.delete_if(self._seat(table_id, previous), player_id)
        await self.touch(table_id, player_id, seat)

    async def touch(self, table_id: str, player_id: str, seat: int) -> None:
        """A sign of life: the player stays counted and keeps the seat for another grace period."""
        presence = self.policy.presence_s
        await asyncio.gather(
            self.store.set(self._member(table_id, player_id), str(seat), presence),
            self.store.presence_add(self._players(table_id), [player_id], self.clock() + presence),
            self._renew_seat(table_id, player_id, seat),
        )

    async def _renew_seat(self, table_id: str, player_id: str, seat: int) -> None:
        if seat:
            key = self._seat(table_id, seat)
            await self.store.compare_and_set(key, player_id, player_id, self.policy.grace_s)

    async def touch_all(self, table_id: str, player_ids: list[str]) -> None:
        """``touch`` every player still at the table (one who left stays gone), in a few
        round trips however many there are."""
        members = [self._member(table_id, p) for p in player_ids]
        seats = await self.store.get_many(members)
        present = [(p, int(s)) for p, s in zip(player_ids, seats, strict=True) if s is not None]
        presence = self.policy.presence_s
        await asyncio.gather(
            self.store.expire_many([self._member(table_id, p) for p, _ in present], presence),
            self.store.presence_add(
                self._players(table_id), [p for p, _ in present], self.clock() + presence
            ),
            *(self._renew_seat(table_id, p, seat) for p, seat in present if seat),
        )

    async def leave(self, table_id: str, player_id: str) -> None:
        seat = await self.seat_of(table_id, player_id)
        if seat:
            await self.store.delete_if(self._seat(table_id, seat), player_id)
        await self.store.delete(self._member(table_id, player_id))
        await self.store.presence_remove(self._players(table_id), player_id)

    async def counts(self, table_id: str, seat_count: int) -> tuple[int, int]:
        """(players at the table, free seats)."""
        players, holders = await asyncio.gather(
            self.store.presence_count(self._players(table_id), self.clock()),
            self.store.get_many([self._seat(table_id, n) for n in range(1, seat_count + 1)]),
        )
        return players, sum(1 for holder in holders if holder is None)


class Tables:
    """The lobby and joining, over game_svc's tables and the shared seating."""

    def __init__(self, game: game_service_pb2_grpc.GameServiceStub, seating: Seating) -> None:
        self.game = game
        self.seating = seating

    async def table(self, table_id: str) -> game_pb2.Table:
        """The table from game_svc; NOT_FOUND with TABLE_NOT_FOUND passes through."""
        with relayed():
            reply = await self.game.GetTable(game_service_pb2.GetTableRequest(table_id=table_id))
        table: game_pb2.Table = reply.table
        return table

    async def with_counts(self, summary: table_pb2.TableSummary) -> table_pb2.TableSummary:
        """``summary`` with the session service's own counts of players and free seats."""
        players, free = await self.seating.counts(summary.table_id, summary.seat_count)
        live = table_pb2.TableSummary()
        live.CopyFrom(summary)
        live.player_count = players
        live.free_seats = free if summary.seat_count else 0
        return live

    async def lobby(
        self,
        jurisdiction: str,
        currency: str,
        game_type: int,
        page_size: int,
        page_token: str,
    ) -> tuple[list[table_pb2.TableSummary], str]:
        request = game_service_pb2.ListTablesRequest(
            game_type=common_pb2.GameType.ValueType(game_type),
            currency=currency,
            jurisdiction=jurisdiction,
            page_size=page_size,
            page_token=page_token,
        )
        with relayed():
            reply = await self.game.ListTables(request)
        tables = await asyncio.gather(*(self.with_counts(t) for t in reply.tables))
        return list(tables), reply.next_page_token

    async def join(self, table_id: str, player_id: str, jurisdiction: str, seat: int) -> str:
        """Put the player at the table (in ``seat`` when not 0); the media stream id."""
        table = await self.table(table_id)
        if not open_to(table.config, jurisdiction):
            raise PermissionDenied(
                "JURISDICTION_BLOCKED", f"table {table_id} is not open to {jurisdiction}"
            )
        if table.summary.status == common_pb2.TABLE_STATUS_SUSPENDED:
            raise FailedPrecondition("TABLE_SUSPENDED", f"table {table_id} is suspended")
        if seat > table.summary.seat_count:
            limit = table.summary.seat_count
            rule = "must be 0: the table has no seats" if not limit else f"must be 0 to {limit}"
            raise InvalidArgument([FieldViolation("seat", rule)])
        await self.seating.join(table_id, player_id, seat)
        return table.summary.media_stream_id
