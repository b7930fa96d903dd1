"""WatchTable's sources: one game_svc subscription per table per process, personal messages
from any node, snapshots, reminders.

The hub (``fanout.py``) fans each table's single upstream out to this process's streams.
Table events are filtered and serialized once per event (``views.py``). Personal messages
(bet accepted, balance changed) may be produced on any session node, so they travel through
the store's pub/sub on one channel per table; the node holding the player's stream queues
them. Messages derived from table events (bet settled or refunded) and reminders (reality
checks, session time used up) are produced where the stream is.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from casino.common.v1 import common_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino.session.v1 import session_pb2, session_service_pb2
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_kit.logs import get_logger
from session_svc import views
from session_svc.bets import BetBook
from session_svc.fanout import FanoutHub
from session_svc.store import Store
from session_svc.tables import Tables
from session_svc.upstream import UpstreamError, relayed
from session_svc.views import Item, TableState

log = get_logger(__name__)
Response = session_service_pb2.WatchTableResponse
TABLE_CACHE_S = 1.0
"""How long a table read from game_svc serves snapshots: thousands of streams resynchronised
at once cost one GetTable."""


@dataclass(frozen=True)
class FeedSettings:
    queue_size: int = 256
    retain: int = 256
    retention_s: float = 300.0
    touch_s: float = 20.0
    """How often the seats and presence of watching players are renewed."""


@dataclass(frozen=True)
class Reminders:
    """A stream's responsible-gaming timers: reality checks every ``interval_s`` (0: none)
    since the session opened, and the session time limit's end (None: no limit)."""

    opened_at: float
    interval_s: int
    ends_at: float | None
    currency: str


def _stamp(at: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(at * 1e9))
    return stamp


class Feeds:
    """This process's WatchTable streams, by table and player."""

    def __init__(
        self,
        game: game_service_pb2_grpc.GameServiceStub,
        wallet: wallet_service_pb2_grpc.WalletServiceStub,
        store: Store,
        key: Callable[..., str],
        tables: Tables,
        bets: BetBook,
        settings: FeedSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.game = game
        self.wallet = wallet
        self.store = store
        self.key = key
        self.tables = tables
        self.bets = bets
        self.settings = settings
        self.clock = clock
        self.hub: FanoutHub[Item, bytes] = FanoutHub(
            self._source,
            self._snapshot,
            lambda item: item.sequence,
            queue_size=settings.queue_size,
            retain=settings.retain,
            retention_s=settings.retention_s,
        )
        self.states: dict[str, TableState] = {}
        self._table_reads: dict[str, tuple[float, asyncio.Task[game_pb2.Table]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the player's stream ------------------------------------------------------------------

    async def stream(
        self, table_id: str, player_id: str, from_sequence: int, reminders: Reminders
    ) -> AsyncIterator[bytes]:
        """The serialized WatchTableResponses of one player at one table."""
        async with self.hub.subscribe(table_id, player_id, from_sequence) as subscription:
            timer = asyncio.create_task(self._remind(table_id, player_id, reminders))
            try:
                async for delivery in subscription:
                    event = delivery.event
                    payload = delivery.snapshot if event is None else event.body_for(player_id)
                    yield views.frame(delivery.sequence, payload or b"")
            finally:
                timer.cancel()

    async def tell(self, table_id: str, player_id: str, *responses: Response) -> None:
        """Queue personal messages, in order, on the player's stream, whichever node holds
        it."""
        messages = [
            json.dumps({"p": player_id, "b": base64.b64encode(views.body(r)).decode()})
            for r in responses
        ]
        await self.store.publish(self._channel(table_id), *messages)

    async def close(self) -> None:
        await self.hub.close()
        for task in list(self._tasks):
            task.cancel()

    # -- upstream -----------------------------------------------------------------------------

    def _channel(self, table_id: str) -> str:
        return self.key("events", table_id)

    async def _source(self, table_id: str, after: int) -> AsyncIterator[Item]:
        """game_svc's events of the table after ``after`` (0: from its current state)."""
        state = self.states.setdefault(table_id, TableState())
        helpers = [
            asyncio.create_task(self._personal(table_id)),
            asyncio.create_task(self._keep_seats(table_id)),
        ]
        try:
            if after == 0:
                after = (await self._table(table_id)).last_sequence
                state.last_sequence = after
            call = self.game.Subscribe(
                game_service_pb2.SubscribeRequest(table_id=table_id, from_sequence=after + 1)
            )
            async for reply in call:
                event = reply.event
                state.apply(event)
                self._derive(table_id, event)
                yield views.table_item(event)
        finally:
            for helper in helpers:
                helper.cancel()

    async def _personal(self, table_id: str) -> None:
        subscribed = False
        async for raw in self.store.subscribe(self._channel(table_id)):
            if raw is None:
                if subscribed:  # the channel was lost: what it carried meanwhile is gone,
                    self.hub.resync(table_id)  # but a snapshot holds its bets and balance
                subscribed = True
                continue
            message = json.loads(raw)
            self.hub.push(table_id, message["p"], Item(0, base64.b64decode(message["b"])))

    async def _keep_seats(self, table_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.touch_s)
            await self.tables.seating.touch_all(table_id, self.hub.watching(table_id))

    def _spawn(self, work: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await work()
            except Exception:
                log.exception("personal message failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _derive(self, table_id: str, event: views.TableEvent) -> None:
        """Settlements and refunds of this process's players' bets, as personal messages."""
        kind = event.WhichOneof("payload")
        if kind not in ("round_settled", "round_voided"):
            return
        local = self.hub.stream_keys(table_id)
        if kind == "round_settled":
            mine = {p for p, _ in views.settlements(event)}.intersection(local)
            if mine:
                self._spawn(lambda: self._report(table_id, event, sorted(mine)))
        elif local:
            self._spawn(lambda: self._report(table_id, event, local))

    async def _report(self, table_id: str, event: views.TableEvent, players: list[str]) -> None:
        accepted = await self.bets.accepted_many(event.round_id, players)
        currency = (await self._table(table_id)).summary.currency
        for player_id, bets in accepted.items():
            if event.HasField("round_voided"):
                responses = views.bets_refunded(event.round_voided, bets)
                cause = session_pb2.BALANCE_CHANGE_CAUSE_BET_REFUNDED
            else:
                by_id = {bet.bet_id: bet for bet in bets}
                responses = [
                    views.bet_settled(settlement, by_id[settlement.bet_id])
                    for p, settlement in views.settlements(event)
                    if p == player_id and settlement.bet_id in by_id
                ]
                cause = session_pb2.BALANCE_CHANGE_CAUSE_BET_SETTLED
            if not responses:
                continue
            balance = await self.balance(player_id, currency)
            responses.append(
                Response(
                    balance_changed=session_pb2.BalanceChanged(
                        balance=balance, cause=cause, round_id=event.round_id
                    )
                )
            )
            for response in responses:
                self.hub.push(table_id, player_id, views.personal_item(response))

    # -- snapshots ----------------------------------------------------------------------------

    async def _table(self, table_id: str) -> game_pb2.Table:
        """GetTable, shared by the calls of the next TABLE_CACHE_S seconds."""
        now = time.monotonic()
        cached = self._table_reads.get(table_id)
        if cached is None or now - cached[0] > TABLE_CACHE_S or cached[1].cancelled():
            task = asyncio.create_task(self.tables.table(table_id))
            cached = self._table_reads[table_id] = (now, task)
        return await asyncio.shield(cached[1])

    async def balance(self, player_id: str, currency: str) -> common_pb2.Money:
        """The wallet balance; a player without an account has nothing."""
        try:
            with relayed():
                reply = await self.wallet.GetBalance(
                    wallet_service_pb2.GetBalanceRequest(player_id=player_id, currency=currency)
                )
        except UpstreamError as error:
            if error.reason != "ACCOUNT_NOT_FOUND":
                raise
            return common_pb2.Money(amount_minor=0, currency=currency)
        balance: common_pb2.Money = reply.balance
        return balance

    async def _snapshot(self, table_id: str, player_id: str) -> tuple[bytes, int]:
        table = await self._table(table_id)
        state = self.states.setdefault(table_id, TableState())
        included = max(state.last_sequence, table.last_sequence)
        round_events = state.snapshot_events(player_id)
        summary, seat, balance, mine = await asyncio.gather(
            self.tables.with_counts(table.summary),
            self.tables.seating.seat_of(table_id, player_id),
            self.balance(player_id, table.summary.currency),
            self.bets.accepted(state.round_id, player_id) if state.round_id else _none(),
        )
        snapshot = session_pb2.TableSnapshot(
            table=summary,
            table_sequence=included,
            round_events=round_events,
            my_bets=mine,
            seat=seat or 0,
            balance=balance,
            recent_results=list(state.recent_results),
        )
        return views.body(Response(table_snapshot=snapshot)), included

    # -- reminders ----------------------------------------------------------------------------

    async def _remind(self, table_id: str, player_id: str, reminders: Reminders) -> None:
        """Reality checks at the player's interval; LimitReached when the session time ends."""
        limit_told = reminders.ends_at is None
        while reminders.interval_s or not limit_told:
            now = self.clock()
            next_check = None
            if reminders.interval_s:
                elapsed = now - reminders.opened_at
                next_check = reminders.opened_at + (elapsed // reminders.interval_s + 1) * (
                    reminders.interval_s
                )
            wake = min(t for t in (next_check, None if limit_told else reminders.ends_at) if t)
            await asyncio.sleep(max(0.0, wake - self.clock()))
            now = self.clock()
            if not limit_told and reminders.ends_at is not None and now >= reminders.ends_at:
                limit_told = True
                reached = session_pb2.LimitReached(kind=session_pb2.LIMIT_REACHED_KIND_SESSION_TIME)
                item = views.personal_item(Response(limit_reached=reached))
                self.hub.push(table_id, player_id, item)
            if next_check is not None and now >= next_check:
                self.hub.push(
                    table_id,
                    player_id,
                    views.personal_item(
                        Response(reality_check=_reality_check(reminders, now, next_check))
                    ),
                )


def _reality_check(reminders: Reminders, now: float, due: float) -> session_pb2.RealityCheck:
    elapsed = Duration()
    elapsed.FromNanoseconds(int((now - reminders.opened_at) * 1e9))
    # Session totals come with bet intake; until then nothing can have been staked.
    zero = common_pb2.Money(amount_minor=0, currency=reminders.currency)
    return session_pb2.RealityCheck(
        elapsed=elapsed,
        net_position=zero,
        total_staked=zero,
        total_paid=zero,
        next_at=_stamp(due + reminders.interval_s),
    )


async def _none() -> list[session_pb2.BetAccepted]:
    return []
