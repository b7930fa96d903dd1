"""One RNG table's round loop, run by the replica that owns the table.

A round moves OPEN -> BETS_CLOSED -> RESULT -> SETTLED (or VOIDED); each move is saved
with its table event in one transaction, fenced by the owner's token, and only then
published. Money moves come first and are idempotent by round ("settle:<round>",
"refund:<round>"), so a step redone after a crash has one effect; the wallet refuses a
settle after a refund and the reverse, so a round is never paid twice.

Recovery is the same code as the live path: a round found OPEN or BETS_CLOSED (its bets
in flight are unknown) is voided with refunds of every stake the wallet holds for it; a
round found in RESULT (its outcome and bets are saved) is settled.

Bets are judged by the server clock when they arrive (invariant 5); "no more bets" waits
for the stakes already at the wallet, so a bet received in time is either in the round's
settlement or refunded, never lost in between.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import grpc
from opentelemetry import propagate, trace

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_pb2, game_service_pb2
from casino.wallet.v1 import wallet_pb2
from casino_kit.batching import Batcher
from casino_kit.errors import details_of
from casino_kit.logs import get_logger
from game_svc import baccarat, metrics, roulette
from game_svc.bets import InvalidBet
from game_svc.clock import Clock, timestamp
from game_svc.convert import bet_request, limits_of
from game_svc.events import EventLog
from game_svc.ids import new_id
from game_svc.money import Outcome, Settlement
from game_svc.outcomes import Drawn, Game, from_draw
from game_svc.results import baccarat_result, card_of, roulette_result
from game_svc.rounds import BetIdReused, BetRequest, Phase, Round
from game_svc.store import Answer, RoundRow, StaleFence, Store, StudioMark, TableRow
from game_svc.upstreams import Rng, Wallet

log = get_logger(__name__)
tracer = trace.get_tracer(__name__)

SETTLED_PART = 1000
"""Bets per RoundSettled event: a 10,000-bet round publishes ten parts."""
STAKE_CALLS = 1
"""Stake calls of one round at the wallet at once (and bet-record writes to the store); the
bets that arrive meanwhile go together in the next call (casino_kit.batching), so a burst
of small batches costs the wallet and the database a few large calls, and queues here
instead of pushing the wallet's calls past their deadline."""
MAX_STAKES = 1000
"""Stakes per wallet call: the wallet's limit."""


VALIDATORS = {Game.ROULETTE: roulette.validate, Game.BACCARAT: baccarat.validate}


Mark = Callable[[list[table_event_pb2.TableEvent]], StudioMark]
"""Builds the studio mark of a transition from its stored events (their sequences)."""


def drawn_of(game: Game, record: game_pb2.Round) -> Drawn:
    """A saved round's result as the rules need it: from the RNG outcome in its proof, from
    the result a studio produced, or (blackjack) the settlements decided with the result."""
    if game is Game.BLACKJACK:  # decisions shaped it: its settlements were saved with it
        return Drawn(game, payouts={bet.bet.bet_id: settlement_of(bet) for bet in record.bets})
    if record.proof.outcome:
        return from_draw(game, record.proof.outcome)
    result = record.result
    if result.HasField("roulette"):
        return Drawn(game, pocket=result.roulette.pocket)
    coup = baccarat.Coup(
        tuple(card_of(c) for c in result.baccarat.player_cards),
        tuple(card_of(c) for c in result.baccarat.banker_cards),
    )
    return Drawn(game, coup=coup)


def settlement_of(record: game_pb2.BetRecord) -> Settlement:
    return Settlement(Outcome(record.outcome), record.payout.amount_minor)


def reason_of(error: grpc.aio.AioRpcError) -> str | None:
    return details_of(error).reason


class LostTable(Exception):
    """Another replica owns the table now; this loop must stop without writing."""


@dataclass
class LiveRound:
    """The open round in memory: the state machine, its saved record, the bets' answers."""

    round: Round
    record: game_pb2.Round
    answers: dict[str, asyncio.Future[game_pb2.BetResult]] = field(default_factory=dict)
    order: itertools.count[int] = field(default_factory=itertools.count)
    kept: set[str] = field(default_factory=set)
    client_seed: str = ""
    in_flight: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    stakes: Batcher[game_pb2.Bet, wallet_pb2.StakeResult] | None = None
    """The round's stake calls at the wallet, made on first use."""
    keeps: Batcher[tuple[game_pb2.BetRecord, int], None] | None = None
    """The round's bet records going to the store, made on first use."""

    def __post_init__(self) -> None:
        self.drained.set()


def rejected(bet_id: str, reason: str) -> game_pb2.BetResult:
    return game_pb2.BetResult(bet_id=bet_id, status=bet_pb2.BET_STATUS_REJECTED, reason=reason)


class TableLoop:
    """Drives one table's rounds while this replica holds its fencing token."""

    def __init__(
        self,
        table: TableRow,
        fence: int,
        store: Store,
        log_: EventLog,
        rng: Rng,
        wallet: Wallet,
        clock: Clock,
        pause_s: float = 2.0,
    ) -> None:
        self.table_id = table.table_id
        self.config = table.config
        self.game = Game(table.config.game_type)
        self.fence = fence
        self.store = store
        self.log = log_
        self.rng = rng
        self.wallet = wallet
        self.clock = clock
        self.pause_s = pause_s
        self.live: LiveRound | None = None
        self.suspended = table.status != common_pb2.TABLE_STATUS_ACTIVE
        self.suspended_by_operator = False
        self._turn = asyncio.Lock()
        self._wake = asyncio.Event()

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Recover, then play rounds back to back until cancelled or deposed."""
        recovering = True
        while True:
            try:
                if recovering:
                    async with self._turn:
                        await self.recover()
                    recovering = False
                await self._wait_until_active()
                await self.play()
                await self._sleep(self.pause_s)
            except (StaleFence, LostTable):
                log.warning("table lost to another owner", table_id=self.table_id)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("round step failed; recovering", table_id=self.table_id)
                self.live = None
                recovering = True
                await asyncio.sleep(1.0)

    async def _wait_until_active(self) -> None:
        while True:
            row = await self.store.table(self.table_id)
            if row.status == common_pb2.TABLE_STATUS_ACTIVE and not self.suspended:
                return
            self._wake.clear()
            await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when an operator changes something."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))
        except TimeoutError:
            pass

    async def recover(self) -> None:
        """End every round a previous owner (or a failed step) left unfinished."""
        for row in await self.store.unfinished_rounds(self.table_id):
            if row.phase is Phase.RESULT:
                accepted = await self._accepted_bets(row.record.round_id)
                drawn = drawn_of(self.game, row.record)
                await self._settle(row.record, row.closes_at, accepted, drawn)
            else:
                await self._void(
                    row.record,
                    row.closes_at,
                    table_event_pb2.VOID_REASON_MALFUNCTION,
                    "the round was interrupted (service restart or owner change)",
                )

    async def play(self) -> None:
        """One RNG round, traced as one span from commitment to settlement."""
        with tracer.start_as_current_span("round", attributes={"casino.table_id": self.table_id}):
            await self._play()

    async def _play(self) -> None:
        live = await self._open()
        await self._sleep_until(live.round.closes_at)
        async with self._turn:
            if live.round.phase is not Phase.OPEN:
                return  # voided meanwhile
            await self._close(live)
        drawn = await self._outcome(live)
        if drawn is not None:
            await self._finish(live, drawn)

    async def _finish(self, live: LiveRound, drawn: Drawn) -> None:
        """Settle a round whose result is in, and record how long its phases took."""
        async with self._turn:
            if live.round.phase is not Phase.RESULT:
                return
            await self._settle(live.record, live.round.closes_at, self._settled_bets(live), drawn)
            live.round.settle(self.clock())
            self.live = None
        times = live.round.phase_times
        for phase, ended in ((Phase.OPEN, Phase.BETS_CLOSED), (Phase.BETS_CLOSED, Phase.RESULT)):
            if phase in times and ended in times:
                seconds = (times[ended] - times[phase]).total_seconds()
                metrics.phase_ended(self.game.name.lower(), phase.name.lower(), seconds)

    async def _sleep_until(self, moment: datetime) -> None:
        while (left := (moment - self.clock()).total_seconds()) > 0:
            await asyncio.sleep(min(left, 0.5))
            if self.live is None or self.live.round.phase is not Phase.OPEN:
                return

    # -- steps ----------------------------------------------------------------------------

    async def _open(self) -> LiveRound:
        round_id = new_id()
        commitment = await self.rng.commit(self.table_id, round_id)
        async with self._turn:
            record = game_pb2.Round(round_id=round_id, commitment=commitment)
            return await self._start(record, table_event_pb2.TableEvent())

    async def _start(
        self, record: game_pb2.Round, event: table_event_pb2.TableEvent, mark: Mark | None = None
    ) -> LiveRound:
        """Open a round: ``record`` and ``event`` come with what the source adds (the RNG's
        commitment, or the studio's round id and media time). Called under the turn."""
        now = self.clock()
        closes_at = now + timedelta(seconds=self.config.betting_window_seconds)
        round_id = record.round_id
        state = self._round_state(round_id, now, closes_at)
        record.table_id = self.table_id
        record.game_type = self.config.game_type
        record.phase = common_pb2.ROUND_PHASE_OPEN
        record.opened_at.CopyFrom(timestamp(now))
        record.total_stake.CopyFrom(common_pb2.Money(amount_minor=0, currency=self.config.currency))
        event.MergeFrom(
            self._event(
                round_id,
                now,
                round_opened=table_event_pb2.RoundOpened(
                    game_type=self.config.game_type,
                    closes_at=timestamp(closes_at),
                    commitment=record.commitment if record.HasField("commitment") else None,
                    limits=self.config.limits,
                    currency=self.config.currency,
                ),
            )
        )
        await self._save(record, closes_at, [event], mark)
        live = LiveRound(state, record)
        self.live = live
        return live

    def _round_state(self, round_id: str, now: datetime, closes_at: datetime) -> Round:
        return Round(
            round_id,
            self.table_id,
            now,
            closes_at,
            limits_of(self.config.limits),
            VALIDATORS[self.game],
        )

    async def _close(self, live: LiveRound) -> None:
        live.round.close_bets(self.clock())
        await live.drained.wait()  # stakes already at the wallet are answered first
        now = self.clock()
        accepted = live.round.accepted
        digest = hashlib.sha256(live.record.round_id.encode())
        for bet_id in sorted(bet.bet_id for bet in accepted):
            digest.update(b"\n" + bet_id.encode())
        live.client_seed = digest.hexdigest()
        closed = table_event_pb2.BetsClosed(
            accepted_bet_count=len(accepted), client_seed=live.client_seed
        )
        live.record.phase = common_pb2.ROUND_PHASE_BETS_CLOSED
        live.record.bets_closed_at.CopyFrom(timestamp(now))
        live.record.total_stake.amount_minor = live.round.total_stake
        await self._save(
            live.record,
            live.round.closes_at,
            [self._event(live.record.round_id, now, bets_closed=closed)],
        )

    async def _outcome(self, live: LiveRound) -> Drawn | None:
        """From "no more bets" to the saved result; None when the round ended meanwhile."""
        async with self._turn:
            if live.round.phase is not Phase.BETS_CLOSED:
                return None
            return await self._draw(live)

    def _settled_bets(self, live: LiveRound) -> tuple[BetRequest, ...]:
        return live.round.accepted

    async def _draw(self, live: LiveRound) -> Drawn:
        round_id = live.record.round_id
        numbers = await self.rng.draw(self.game, round_id, live.client_seed)
        proof = await self.rng.reveal(round_id)
        drawn = from_draw(self.game, numbers)
        now = self.clock()
        live.round.record_result(now)
        result = table_event_pb2.RoundResult(round_hash=drawn.round_hash(round_id))
        if drawn.pocket is not None:
            result.roulette.CopyFrom(roulette_result(drawn.pocket))
        elif drawn.coup is not None:
            result.baccarat.CopyFrom(baccarat_result(drawn.coup))
        live.record.phase = common_pb2.ROUND_PHASE_RESULT
        live.record.result.CopyFrom(result)
        live.record.proof.CopyFrom(proof)
        await self._save(
            live.record, live.round.closes_at, [self._event(round_id, now, round_result=result)]
        )
        return drawn

    async def _settle(
        self,
        record: game_pb2.Round,
        closes_at: datetime,
        accepted: Sequence[BetRequest],
        drawn: Drawn,
    ) -> None:
        started = time.monotonic()
        round_id = record.round_id
        currency = self.config.currency
        # Sorted, so a settlement redone after a crash is the same request, byte for byte.
        settlements = [
            (bet, drawn.settle(bet)) for bet in sorted(accepted, key=lambda bet: bet.bet_id)
        ]
        payouts = [
            wallet_pb2.Payout(
                bet_id=request.bet_id,
                player_id=request.player_id,
                payout=common_pb2.Money(amount_minor=settled.payout, currency=currency),
            )
            for request, settled in settlements
        ]
        at_wallet = time.monotonic()
        # The wallet commits while the events are built here: they are saved only once it
        # answered OK.
        paying = asyncio.ensure_future(
            self.wallet.settle(self.table_id, round_id, self.fence, payouts)
        )
        await asyncio.sleep(0)  # let the call leave before the CPU work below
        logged = self._settled_events(round_id, settlements)
        try:
            await paying
        except grpc.aio.AioRpcError as error:
            reason = reason_of(error)
            if reason == "STALE_FENCING_TOKEN":
                raise LostTable(self.table_id) from error
            if reason in ("SETTLEMENT_MISMATCH", "ROUND_ALREADY_REFUNDED"):
                # The wallet holds stakes this round did not record (or an operator refunded
                # it first): the fair end is a full refund.
                await self._void(
                    record,
                    closes_at,
                    table_event_pb2.VOID_REASON_MALFUNCTION,
                    error.details() or "",
                )
                return
            raise
        after_wallet = time.monotonic()
        now = self.clock()
        for event in logged:
            event.server_time.CopyFrom(timestamp(now))
        total_stake = logged[0].round_settled.total_stake
        total_payout = logged[0].round_settled.total_payout
        record.phase = common_pb2.ROUND_PHASE_SETTLED
        record.closed_at.CopyFrom(timestamp(now))
        record.total_stake.CopyFrom(total_stake)
        record.total_payout.CopyFrom(total_payout)
        saving = time.monotonic()
        await self._save(record, closes_at, logged)
        metrics.settled(self.game.name.lower(), time.monotonic() - started)
        log.info(
            "round settled",
            table_id=self.table_id,
            round_id=round_id,
            bets=len(settlements),
            payout=total_payout.amount_minor,
            wallet_ms=round(1000 * (after_wallet - at_wallet)),
            save_ms=round(1000 * (time.monotonic() - saving)),
            total_ms=round(1000 * (time.monotonic() - started)),
        )

    def _settled_events(
        self, round_id: str, settlements: Sequence[tuple[BetRequest, Settlement]]
    ) -> list[table_event_pb2.TableEvent]:
        """RoundSettled in parts of SETTLED_PART bets, totals on every part."""
        currency = self.config.currency
        bets = [
            table_event_pb2.BetSettlement(
                bet_id=request.bet_id,
                player_id=request.player_id,
                spot=bet_pb2.BetSpot(
                    bet_type=bet_pb2.BetType.ValueType(request.spot.bet_type),
                    numbers=request.spot.numbers,
                    group=request.spot.group,
                    seat=request.spot.seat,
                ),
                stake=common_pb2.Money(amount_minor=request.stake, currency=currency),
                payout=common_pb2.Money(amount_minor=settled.payout, currency=currency),
                outcome=bet_pb2.BetOutcome.ValueType(settled.outcome),
            )
            for request, settled in settlements
        ]
        total_stake = common_pb2.Money(
            amount_minor=sum(request.stake for request, _ in settlements), currency=currency
        )
        total_payout = common_pb2.Money(
            amount_minor=sum(settled.payout for _, settled in settlements), currency=currency
        )
        parts = [bets[i : i + SETTLED_PART] for i in range(0, len(bets), SETTLED_PART)] or [[]]
        now = self.clock()
        return [
            self._event(
                round_id,
                now,
                round_settled=table_event_pb2.RoundSettled(
                    bets=part,
                    part=number,
                    part_count=len(parts),
                    total_stake=total_stake,
                    total_payout=total_payout,
                ),
            )
            for number, part in enumerate(parts, 1)
        ]

    async def _void(
        self,
        record: game_pb2.Round,
        closes_at: datetime,
        reason: int,
        detail: str,
        mark: Mark | None = None,
    ) -> table_event_pb2.TableEvent:
        round_id = record.round_id
        try:
            # The same reason on every attempt, so a void redone by recovery is the same
            # request; the detail goes into RoundVoided.
            refunded = await self.wallet.refund(
                self.table_id, round_id, self.fence, f"round {round_id} voided"
            )
        except grpc.aio.AioRpcError as error:
            if reason_of(error) == "STALE_FENCING_TOKEN":
                raise LostTable(self.table_id) from error
            raise
        now = self.clock()
        voided = table_event_pb2.RoundVoided(
            reason=table_event_pb2.VoidReason.ValueType(reason),
            detail=detail,
            refunded_bet_count=refunded.refunded_bet_count,
        )
        record.phase = common_pb2.ROUND_PHASE_VOIDED
        record.closed_at.CopyFrom(timestamp(now))
        record.voided.CopyFrom(voided)
        (event,) = await self._save(
            record, closes_at, [self._event(round_id, now, round_voided=voided)], mark
        )
        if self.live is not None and self.live.record.round_id == round_id:
            if self.live.round.phase is not Phase.VOIDED:
                self.live.round.void(now)
            self.live = None
        log.info("round voided", table_id=self.table_id, round_id=round_id, detail=detail)
        return event

    # -- operator controls --------------------------------------------------------------

    async def void(self, round_id: str, detail: str) -> table_event_pb2.TableEvent | None:
        """Void the table's unfinished round ``round_id``; None when it is not unfinished."""
        async with self._turn:
            for row in await self.store.unfinished_rounds(self.table_id):
                if row.record.round_id == round_id:
                    live = self.live
                    if live is not None and live.record.round_id == round_id:
                        if live.round.phase is Phase.OPEN:
                            live.round.close_bets(self.clock())
                        await live.drained.wait()
                    event = await self._void(
                        row.record, row.closes_at, table_event_pb2.VOID_REASON_OPERATOR, detail
                    )
                    self._wake.set()
                    return event
        return None

    async def suspend(self) -> str:
        """Stop opening rounds and end the current one (voided, or settled if it has a
        result); returns the voided round's id, if any."""
        self.suspended = self.suspended_by_operator = True
        self._wake.set()
        async with self._turn:
            return await self._end_rounds(
                table_event_pb2.VOID_REASON_TABLE_SUSPENDED, "the table was suspended"
            )

    async def _end_rounds(self, reason: int, detail: str, mark: Mark | None = None) -> str:
        """End every unfinished round (under the turn): settle one with a result, void the
        others; ``mark`` goes with the first void. Returns the voided round's id, if any."""
        voided = ""
        for row in await self.store.unfinished_rounds(self.table_id):
            live = self.live
            if live is not None and live.record.round_id == row.record.round_id:
                if live.round.phase is Phase.OPEN:
                    live.round.close_bets(self.clock())
                await live.drained.wait()
            if row.phase is Phase.RESULT:
                accepted = await self._accepted_bets(row.record.round_id)
                await self._settle(
                    row.record, row.closes_at, accepted, drawn_of(self.game, row.record)
                )
                continue
            await self._void(row.record, row.closes_at, reason, detail, mark)
            mark, voided = None, row.record.round_id
        return voided

    def resume(self) -> None:
        self.suspended = self.suspended_by_operator = False
        self._wake.set()

    # -- bets -----------------------------------------------------------------------------

    async def place(self, batch: game_service_pb2.PlaceBetsRequest) -> list[game_pb2.BetResult]:
        """Answer every bet of a batch; stakes go to the wallet in one call."""
        now = self.clock()
        live = self.live
        if live is None or live.record.round_id != batch.round_id:
            return await self._answer_late(batch)
        results: list[asyncio.Future[game_pb2.BetResult]] = []
        fresh: list[game_pb2.Bet] = []
        loop = asyncio.get_running_loop()
        for bet in batch.bets:
            known = live.answers.get(bet.bet_id)
            future: asyncio.Future[game_pb2.BetResult] = loop.create_future()
            try:
                answer = live.round.place(bet_request(bet), now)
            except InvalidBet:
                future.set_result(rejected(bet.bet_id, "INVALID_BET"))
            except BetIdReused:
                future.set_result(rejected(bet.bet_id, "IDEMPOTENCY_KEY_REUSED"))
            else:
                if known is not None:
                    future = known
                elif bet.stake.currency != self.config.currency:
                    future.set_result(rejected(bet.bet_id, "CURRENCY_MISMATCH"))
                    live.round.refuse(bet.bet_id, "CURRENCY_MISMATCH")
                    live.answers[bet.bet_id] = future
                elif not answer.accepted:
                    future.set_result(rejected(bet.bet_id, answer.reason))
                    live.answers[bet.bet_id] = future
                else:
                    fresh.append(bet)
                    live.answers[bet.bet_id] = future
            results.append(future)
        if fresh:
            await self._stake(live, batch, fresh, now)
        else:
            await self._keep(live, batch, now)
        answered = [await future for future in results]
        for result in answered:
            metrics.bet_answered(self.game.name.lower(), result.reason)
        return answered

    async def _stake(
        self,
        live: LiveRound,
        batch: game_service_pb2.PlaceBetsRequest,
        fresh: list[game_pb2.Bet],
        now: datetime,
    ) -> None:
        live.in_flight += 1
        live.drained.clear()
        try:
            if live.stakes is None:
                live.stakes = Batcher(
                    functools.partial(self._stake_group, live.record.round_id),
                    max_in_flight=STAKE_CALLS,
                    max_items=MAX_STAKES,
                )
            try:
                answers = await live.stakes.submit_many(fresh)
            except grpc.aio.AioRpcError as error:
                # The stakes may or may not be debited: only a refund of the whole round is
                # certain to be right. The bets answer BETTING_CLOSED: the round is over.
                log.error("stakes failed; voiding the round", error=str(error.details()))
                for bet in fresh:
                    live.round.refuse(bet.bet_id, "BETTING_CLOSED")
                    live.answers[bet.bet_id].set_result(rejected(bet.bet_id, "BETTING_CLOSED"))
                asyncio.get_running_loop().create_task(self._void_after_failure(live))
                return
            for bet, answer in zip(fresh, answers, strict=True):
                if answer.status == wallet_pb2.STAKE_STATUS_ACCEPTED:
                    result = game_pb2.BetResult(
                        bet_id=bet.bet_id,
                        status=bet_pb2.BET_STATUS_ACCEPTED,
                        balance_after=answer.balance_after,
                    )
                else:
                    live.round.refuse(bet.bet_id, answer.reason)
                    result = rejected(bet.bet_id, answer.reason)
                    result.balance_after.CopyFrom(answer.balance_after)
                live.answers[bet.bet_id].set_result(result)
            await self._keep(live, batch, now)
        finally:
            live.in_flight -= 1
            if live.in_flight == 0:
                live.drained.set()

    async def _stake_group(
        self, round_id: str, bets: list[game_pb2.Bet]
    ) -> list[wallet_pb2.StakeResult]:
        """One wallet call for the bets of concurrent batches; its key names its bets, so a
        retry of the call is the same request."""
        key = hashlib.sha256("\n".join(bet.bet_id for bet in bets).encode()).hexdigest()
        stakes = [
            wallet_pb2.Stake(bet_id=bet.bet_id, player_id=bet.player_id, amount=bet.stake)
            for bet in bets
        ]
        return await self.wallet.stake(
            f"bets:{round_id}:{key}", self.table_id, round_id, self.fence, stakes
        )

    async def _keep(
        self,
        live: LiveRound,
        batch: game_service_pb2.PlaceBetsRequest,
        now: datetime,
    ) -> None:
        """Save the batch's newly answered bets for recall (accepted and rejected)."""
        records = []
        placed_at = timestamp(now)
        for bet in batch.bets:
            future = live.answers.get(bet.bet_id)
            if future is None or not future.done() or bet.bet_id in live.kept:
                continue
            live.kept.add(bet.bet_id)
            result = future.result()
            records.append(
                (
                    game_pb2.BetRecord(
                        bet=bet,
                        status=result.status,
                        reason=result.reason,
                        placed_at=placed_at,
                    ),
                    next(live.order),
                )
            )
        if records:
            if live.keeps is None:
                live.keeps = Batcher(
                    functools.partial(self._keep_group, live.record.round_id),
                    max_in_flight=STAKE_CALLS,
                    max_items=MAX_STAKES,
                )
            await live.keeps.submit_many(records)

    async def _keep_group(
        self, round_id: str, records: list[tuple[game_pb2.BetRecord, int]]
    ) -> list[None]:
        """The records of concurrent batches in one transaction."""
        await self.store.add_bets(round_id, records)
        return [None] * len(records)

    async def _void_after_failure(self, live: LiveRound) -> None:
        async with self._turn:
            if self.live is live and live.round.phase in (Phase.OPEN, Phase.BETS_CLOSED):
                if live.round.phase is Phase.OPEN:
                    live.round.close_bets(self.clock())
                await live.drained.wait()
                await self._void(
                    live.record,
                    live.round.closes_at,
                    table_event_pb2.VOID_REASON_MALFUNCTION,
                    "the wallet did not answer a stake batch",
                )

    async def _answer_late(
        self, batch: game_service_pb2.PlaceBetsRequest
    ) -> list[game_pb2.BetResult]:
        """A batch for a round that is not open: repeats get their first answer."""
        ids = [bet.bet_id for bet in batch.bets]
        kept = {r.bet.bet_id: r for r in await self.store.bets_of(batch.round_id, bet_ids=ids)}
        results = []
        for bet in batch.bets:
            record = kept.get(bet.bet_id)
            if record is None:
                reason = "TABLE_SUSPENDED" if self.suspended else "BETTING_CLOSED"
                results.append(rejected(bet.bet_id, reason))
            else:
                results.append(
                    game_pb2.BetResult(
                        bet_id=bet.bet_id, status=record.status, reason=record.reason
                    )
                )
        return results

    # -- storage --------------------------------------------------------------------------

    async def _accepted_bets(self, round_id: str) -> tuple[BetRequest, ...]:
        return tuple(
            bet_request(r.bet)
            for r in await self.store.bets_of(round_id)
            if r.status == bet_pb2.BET_STATUS_ACCEPTED
        )

    def _event(self, round_id: str, now: datetime, **payload: object) -> table_event_pb2.TableEvent:
        """A table event carrying the current trace context (the round's span), so a
        subscriber's work on it joins the round's trace."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        trace.get_current_span().set_attribute("casino.round_id", round_id)
        return table_event_pb2.TableEvent(
            table_id=self.table_id,
            round_id=round_id,
            server_time=timestamp(now),
            trace_context=carrier,
            **payload,  # type: ignore[arg-type]
        )

    async def _save(
        self,
        record: game_pb2.Round,
        closes_at: datetime,
        logged: list[table_event_pb2.TableEvent],
        mark: Mark | None = None,
        answer: Answer | None = None,
    ) -> list[table_event_pb2.TableEvent]:
        async with self.log.lock(self.table_id):
            stored = await self.store.save_round(
                RoundRow(record, closes_at), logged, self.fence, mark, answer
            )
            for event in stored:
                self.log.publish(event)
        return stored
