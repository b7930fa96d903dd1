"""Blackjack rounds: the betting window, then the deal, decision by decision.

``BlackjackTable`` holds what every blackjack table does, whoever deals (decisions, extra
stakes, the result with its settlements); ``BlackjackLoop`` deals from the RNG, and
``studio_blackjack.StudioBlackjackLoop`` from a studio's card scanner.

At an RNG table, after "no more bets" the RNG shuffles the round's shoe. Its seed was committed in
RoundOpened and is revealed only when the round is finished, so nobody can read the cards
ahead. The deal (``blackjack_deal.Deal``) is then played out:

- every card is published as it leaves the shoe, the hole card face down;
- each decision is asked for with a deadline by server time: seats one at a time, in
  order; in infinite mode every player at once, within one window per stage. When the
  deadline passes, STAND is applied for whoever has not decided;
- DOUBLE, SPLIT and INSURANCE first stake their extra bet at the wallet (refused: the
  decision is not taken and the player may still decide otherwise).

Each decision is saved with its events and its idempotent answer in one transaction. Then
the result is saved with every bet's settlement (decisions shaped it, so recovery settles
from those), and the round is settled like any other. A round interrupted before its
result is voided with full refunds, extra stakes included: the wallet refunds every stake
it holds for the round.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable
from datetime import datetime, timedelta

import grpc

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_pb2, game_service_pb2
from casino.wallet.v1 import wallet_pb2
from casino_kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, Unavailable
from game_svc import blackjack
from game_svc.blackjack import Action, DecisionNotExpected, DecisionRequest
from game_svc.blackjack_deal import EXTRA_STAKED, Deal, Revealed, Step
from game_svc.blackjack_round import Key
from game_svc.cards import Shoe
from game_svc.clock import timestamp
from game_svc.convert import limits_of, rules_of
from game_svc.outcomes import Drawn, Game
from game_svc.results import blackjack_result, card_message
from game_svc.round_hash import round_hash
from game_svc.round_loop import LiveRound, Mark, TableLoop, reason_of
from game_svc.rounds import BetRequest, Phase, Round
from game_svc.store import Answer


class BlackjackTable(TableLoop):
    """What every blackjack table does, whoever deals: seat and behind bets, decisions
    asked with a deadline, extra stakes, and the result saved with every settlement."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.rules = rules_of(self.config)
        self.deal: Deal | None = None
        self._pending: dict[Key, DecisionRequest] = {}
        self._window: datetime | None = None
        self._decided = asyncio.Event()

    def _round_state(self, round_id: str, now: datetime, closes_at: datetime) -> Round:
        return Round(
            round_id,
            self.table_id,
            now,
            closes_at,
            limits_of(self.config.limits),
            functools.partial(blackjack.validate, rules=self.rules),
            blackjack.admit_seat_bet,
        )

    def _settled_bets(self, live: LiveRound) -> tuple[BetRequest, ...]:
        assert self.deal is not None
        return self.deal.bets

    async def _expire(self, live: LiveRound) -> None:
        """STAND for every decision whose deadline passed; asks for the next ones."""
        assert self.deal is not None
        now = self.clock()
        due = [key for key, request in self._pending.items() if request.expire(now)]
        if not due:
            return
        events: list[table_event_pb2.TableEvent] = []
        for key in due:
            events += self._apply(live.record.round_id, now, key, Action.STAND, automatic=True)
        events += self._ask(live.record.round_id, now)
        await self._save(live.record, live.round.closes_at, events)

    def _apply(
        self,
        round_id: str,
        now: datetime,
        key: Key,
        action: Action,
        automatic: bool = False,
        extra: BetRequest | None = None,
    ) -> list[table_event_pb2.TableEvent]:
        """Apply one decision to the deal: its DecisionMade, then the cards it dealt."""
        assert self.deal is not None
        deal = self.deal
        stage = deal.round.stage
        made = table_event_pb2.DecisionMade(
            seat=deal.seat_of(key),
            hand=deal.hand_number(key),
            player_id=deal.players[key],
            action=bet_pb2.BlackjackAction.ValueType(action),
            automatic=automatic,
        )
        steps = self._take(key, action, extra)
        del self._pending[key]
        if self.deal.round.stage is not stage:  # a new stage asks everyone again
            self._pending.clear()
            self._window = None
        return [
            self._event(round_id, now, decision_made=made),
            *self._card_events(round_id, now, steps),
        ]

    def _take(self, key: Key, action: Action, extra: BetRequest | None) -> list[Step]:
        """Apply a decision to the deal; returns the cards it dealt, to publish."""
        assert self.deal is not None
        return self.deal.decide(key, action, extra)

    def _waiting(self) -> bool:
        """True while the deal waits for a card rather than a decision."""
        return False

    def _ask(self, round_id: str, now: datetime) -> list[table_event_pb2.TableEvent]:
        """Open a decision for each awaited key that has none: seats one by one with their
        own deadline; in infinite mode one window for everyone, announced once."""
        deal = self.deal
        if deal is None or self._waiting():
            return []
        fresh = [key for key in deal.round.awaiting() if key not in self._pending]
        if not fresh:
            return []
        events = []
        window = self.rules.decision_window_s
        if self.rules.infinite_mode:
            announce = self._window is None
            if self._window is None:
                self._window = now + timedelta(seconds=window)
            for key in fresh:
                self._pending[key] = DecisionRequest(
                    0, deal.hand_number(key), deal.round.allowed(key), self._window
                )
            if announce:
                allowed = sorted(set().union(*(deal.round.allowed(k) for k in fresh)))
                events.append(self._asked(round_id, now, 0, 1, "", allowed, self._window))
            return events
        for key in fresh:
            request = DecisionRequest.open(
                deal.seat_of(key), deal.hand_number(key), deal.round.allowed(key), now, self.rules
            )
            self._pending[key] = request
            events.append(
                self._asked(
                    round_id,
                    now,
                    request.seat,
                    request.hand,
                    deal.players[key],
                    sorted(request.allowed),
                    request.deadline,
                )
            )
        return events

    def _asked(
        self,
        round_id: str,
        now: datetime,
        seat: int,
        hand: int,
        player_id: str,
        allowed: Iterable[Action],
        deadline: datetime,
    ) -> table_event_pb2.TableEvent:
        return self._event(
            round_id,
            now,
            decision_requested=table_event_pb2.DecisionRequested(
                seat=seat,
                hand=hand,
                player_id=player_id,
                allowed_actions=[bet_pb2.BlackjackAction.ValueType(a) for a in allowed],
                deadline=timestamp(deadline),
            ),
        )

    def _card_events(
        self, round_id: str, now: datetime, steps: Iterable[Step]
    ) -> list[table_event_pb2.TableEvent]:
        events = []
        for step in steps:
            if isinstance(step, Revealed):
                revealed = table_event_pb2.CardRevealed(
                    deal_index=step.deal_index, card=card_message(step.card)
                )
                events.append(self._event(round_id, now, card_revealed=revealed))
                continue
            dealt = step.card
            message = table_event_pb2.CardDealt(
                deal_index=dealt.deal_index,
                target=table_event_pb2.CardTarget.ValueType(dealt.target),
                seat=dealt.seat,
                hand=dealt.hand,
                face_down=step.face_down,
            )
            if not step.face_down:
                message.card.CopyFrom(card_message(dealt.card))
            events.append(self._event(round_id, now, card_dealt=message))
        return events

    async def _save_result(
        self,
        live: LiveRound,
        deal: Deal,
        event: table_event_pb2.TableEvent,
        mark: Mark | None = None,
    ) -> Drawn:
        """Save the finished deal's result (in ``event``) with every bet's settlement, so
        recovery settles what the decisions made."""
        live.round.record_result(self.clock())
        payouts = deal.settlements()
        event.round_result.blackjack.CopyFrom(blackjack_result(deal.round, deal.players))
        record = live.record
        record.phase = common_pb2.ROUND_PHASE_RESULT
        record.result.CopyFrom(event.round_result)
        del record.bets[:]
        currency = self.config.currency
        for bet in deal.bets:
            settled = payouts[bet.bet_id]
            record.bets.add(
                bet=bet_message(bet, currency),
                status=bet_pb2.BET_STATUS_ACCEPTED,
                outcome=bet_pb2.BetOutcome.ValueType(settled.outcome),
                payout=common_pb2.Money(amount_minor=settled.payout, currency=currency),
            )
        await self._save(record, live.round.closes_at, [event], mark)
        return Drawn(Game.BLACKJACK, payouts=payouts)

    # -- decisions from players ---------------------------------------------------------

    async def decide(
        self, request: game_service_pb2.SubmitDecisionRequest, answer: Answer
    ) -> game_service_pb2.SubmitDecisionResponse:
        """A player's decision, judged by the server clock against its deadline."""
        async with self._turn:
            live, deal = self.live, self.deal
            if (
                live is None
                or deal is None
                or live.record.round_id != request.round_id
                or live.round.phase is not Phase.BETS_CLOSED
                or deal.finished
            ):
                raise DecisionNotExpected(f"round {request.round_id} takes no decisions now")
            key = deal.owner(request.player_id, request.seat, request.hand)
            action = Action(request.action)
            if action not in deal.round.allowed(key):
                raise DecisionNotExpected(f"{action.name} is not allowed on this hand now")
            now = self.clock()
            pending = self._pending.get(key)
            if pending is None:
                raise DecisionNotExpected("the dealer is dealing; wait for the next request")
            pending.decide(action, now)
            response = game_service_pb2.SubmitDecisionResponse(action=request.action)
            extra = None
            if action in EXTRA_STAKED:
                extra, balance = await self._stake_extra(live, deal, key, action, request)
                response.extra_stake.CopyFrom(
                    common_pb2.Money(amount_minor=extra.stake, currency=self.config.currency)
                )
                response.balance_after.CopyFrom(balance)
            elif request.extra_bet_id:
                raise InvalidArgument(
                    [FieldViolation("extra_bet_id", f"must be empty for {action.name}")]
                )
            round_id = live.record.round_id
            events = self._apply(round_id, now, key, action, extra=extra)
            events += self._ask(round_id, now)

            def respond(made: table_event_pb2.TableEvent | None) -> bytes:
                response.sequence = made.sequence if made else 0
                return response.SerializeToString(deterministic=True)

            kept = Answer(answer.operation, answer.key, answer.request_hash, respond)
            await self._save(live.record, live.round.closes_at, events, answer=kept)
            self._decided.set()
            return response

    async def _stake_extra(
        self,
        live: LiveRound,
        deal: Deal,
        key: Key,
        action: Action,
        request: game_service_pb2.SubmitDecisionRequest,
    ) -> tuple[BetRequest, common_pb2.Money]:
        """Stake the decision's extra bet at the wallet and keep it for recall."""
        if not request.extra_bet_id:
            raise InvalidArgument(
                [FieldViolation("extra_bet_id", f"is required for {action.name}")]
            )
        if request.extra_bet_id in live.answers or any(
            bet.bet_id == request.extra_bet_id for bet in deal.bets
        ):
            raise InvalidArgument(
                [FieldViolation("extra_bet_id", "is the id of another bet of the round")]
            )
        extra = BetRequest(
            request.extra_bet_id,
            request.player_id,
            deal.extra_spot(key, action),
            deal.extra_stake(key, action),
        )
        currency = self.config.currency
        message = bet_message(extra, currency)
        try:
            (answer,) = await self.wallet.stake(
                f"decision:{live.record.round_id}:{extra.bet_id}",
                self.table_id,
                live.record.round_id,
                self.fence,
                [
                    wallet_pb2.Stake(
                        bet_id=extra.bet_id, player_id=extra.player_id, amount=message.stake
                    )
                ],
            )
        except grpc.aio.AioRpcError as error:
            if reason_of(error) == "STALE_FENCING_TOKEN":
                raise Unavailable("TABLE_NOT_OWNED", "the table's owner changed; retry") from error
            raise Unavailable(
                "WALLET_UNAVAILABLE", "the extra stake could not be placed; retry"
            ) from error
        if answer.status != wallet_pb2.STAKE_STATUS_ACCEPTED:
            raise FailedPrecondition(
                answer.reason or "INSUFFICIENT_FUNDS",
                f"the wallet refused the extra stake of {action.name}",
                metadata={"bet_id": extra.bet_id},
            )
        record = game_pb2.BetRecord(
            bet=message, status=bet_pb2.BET_STATUS_ACCEPTED, placed_at=timestamp(self.clock())
        )
        await self.store.add_bets(live.record.round_id, [(record, next(live.order))])
        return extra, answer.balance_after


class BlackjackLoop(BlackjackTable):
    """Drives one RNG blackjack table (seats or infinite mode)."""

    async def _outcome(self, live: LiveRound) -> Drawn | None:
        round_id = live.record.round_id
        async with self._turn:
            if live.round.phase is not Phase.BETS_CLOSED:
                return None
            numbers = await self.rng.draw(
                Game.BLACKJACK, round_id, live.client_seed, decks=self.rules.decks
            )
            deal = Deal(
                self.rules, live.round.accepted, Shoe.from_indexes(numbers, self.rules.decks).deal
            )
            self.deal = deal
            self._pending.clear()
            self._window = None
            now = self.clock()
            events = self._card_events(round_id, now, deal.steps)
            events += self._ask(round_id, now)
            await self._save(live.record, live.round.closes_at, events)
            self._decided.clear()
        while True:
            async with self._turn:
                if self.live is not live or live.round.phase is not Phase.BETS_CLOSED:
                    return None
                await self._expire(live)
                if deal.finished:
                    return await self._result(live, deal)
                self._decided.clear()
                deadline = min(request.deadline for request in self._pending.values())
            wait = (deadline - self.clock()).total_seconds()
            with contextlib.suppress(TimeoutError):
                # Short waits: a round voided meanwhile (operator, suspension) is noticed soon.
                await asyncio.wait_for(self._decided.wait(), timeout=min(max(wait, 0), 0.5))

    async def _result(self, live: LiveRound, deal: Deal) -> Drawn:
        """The finished deal: seed revealed, result saved with every bet's settlement."""
        round_id = live.record.round_id
        live.record.proof.CopyFrom(await self.rng.reveal(round_id))
        result = table_event_pb2.RoundResult(round_hash=round_hash(round_id, deal.dealt))
        return await self._save_result(
            live, deal, self._event(round_id, self.clock(), round_result=result)
        )


def bet_message(bet: BetRequest, currency: str) -> game_pb2.Bet:
    return game_pb2.Bet(
        bet_id=bet.bet_id,
        player_id=bet.player_id,
        spot=bet_pb2.BetSpot(
            bet_type=bet_pb2.BetType.ValueType(bet.spot.bet_type), seat=bet.spot.seat
        ),
        stake=common_pb2.Money(amount_minor=bet.stake, currency=currency),
    )
