"""A studio blackjack table: the studio's card scanner deals, the platform runs the game.

The studio opens the round (RoundStart); betting closes by server time or at the first
card. Every CardDealt must be the card the rules call for next, at the place they name
(``blackjack_deal.next_place``): the studio says which card it was, never where it goes.
The dealer's hole card comes face down with the value its scanner read, which game_svc
keeps to peek and to play the dealer's hand and never publishes; the studio turns it with
a CardRevealed once no decision is awaited, before the dealer draws.

Decisions are asked for and timed as at RNG tables; one that needs a card waits for the
studio to deal it. The deal is rebuilt from the cards and decisions after each change
(``blackjack_deal.replay``), so the rules stay the one source of truth. The studio's
RoundResult must carry the round hash of the cards applied; then the round is settled.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from casino.game.v1 import game_service_pb2
from casino.ingest.v1 import ingest_pb2
from game_svc.blackjack import Action
from game_svc.blackjack_deal import Replay, Step, Taken, hole_index, next_place, replay
from game_svc.blackjack_loop import BlackjackTable
from game_svc.blackjack_round import Key
from game_svc.cards import Card
from game_svc.results import card_of
from game_svc.round_hash import Target, round_hash
from game_svc.round_loop import LiveRound
from game_svc.rounds import BetRequest, Phase
from game_svc.studio import StudioLoop, invalid


class StudioBlackjackLoop(BlackjackTable, StudioLoop):
    """Drives a studio blackjack table while this replica owns it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cards: list[Card] = []
        self.taken: list[Taken] = []
        self.revealed = False
        self._replayed = Replay(None, True, 0)

    async def play(self) -> None:
        """Close betting on time; while decisions are awaited, STAND when time runs out."""
        if not self._pending:
            await super().play()
            return
        while True:
            async with self._turn:
                live = self.live
                if live is None or live.round.phase is not Phase.BETS_CLOSED:
                    self._pending.clear()
                    return
                await self._expire(live)
                if not self._pending:
                    return
                self._decided.clear()
                deadline = min(request.deadline for request in self._pending.values())
            wait = (deadline - self.clock()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._decided.wait(), timeout=min(max(wait, 0), 0.5))

    async def _round_start(
        self, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        self.cards, self.taken, self.revealed = [], [], False
        self.deal, self._replayed = None, Replay(None, True, 0)
        self._pending.clear()
        self._window = None
        return await super()._round_start(event, digest)

    # -- the deal as the studio deals it -------------------------------------------------

    def _rebuild(self, bets: tuple[BetRequest, ...]) -> None:
        self._replayed = replay(self.rules, bets, self.cards, self.taken)
        self.deal = self._replayed.deal

    def _take(self, key: Key, action: Action, extra: BetRequest | None) -> list[Step]:
        """Record the decision; its cards, if it needs any, come from the studio."""
        assert self.live is not None
        self.taken.append(Taken(key, action, extra))
        self._rebuild(self.live.round.accepted)
        return []

    def _waiting(self) -> bool:
        return self._replayed.waiting

    async def _card(
        self, live: LiveRound, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        dealt = event.card_dealt
        bets = live.round.accepted
        index = len(self.cards) + 1
        place = next_place(self.rules, bets, self.cards, self.taken)
        if place is None:
            raise invalid("no card is due: a decision is awaited, or the deal is complete")
        claimed = (int(dealt.target), dealt.seat, dealt.hand)
        if dealt.deal_index != index or claimed != place:
            target, seat, hand = place
            raise invalid(f"card {index} goes to {target.name} seat {seat} hand {hand}")
        hole = index == hole_index(self.rules, bets)
        if dealt.face_down != hole:
            raise invalid("the dealer's hole card, and only it, is dealt face down")
        if place[0] is Target.DEALER and index > hole_index(self.rules, bets) and not self.revealed:
            raise invalid("the hole card is turned before the dealer draws")
        try:
            card = card_of(dealt.scanned_card if hole else dealt.card)
        except ValueError as error:
            raise invalid(str(error)) from None
        self.cards.append(card)
        self._rebuild(bets)
        round_id = live.record.round_id
        stamped = self._stamped(event, round_id)
        stamped.card_dealt.CopyFrom(dealt)
        stamped.card_dealt.ClearField("scanned_card")  # players never see the hole card
        events = [stamped, *self._ask(round_id, self.clock())]
        mark = self._applied(event.studio_sequence, digest, round_id)
        await self._save(live.record, live.round.closes_at, events, mark)
        return await self._answer(event.studio_sequence)

    async def _reveal(
        self, live: LiveRound, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        turned = event.card_revealed
        hole = hole_index(self.rules, live.round.accepted)
        deal = self.deal
        if self.revealed or len(self.cards) < hole or turned.deal_index != hole:
            raise invalid("only the dealer's hole card is turned, once, after it was dealt")
        if deal is None or deal.round.awaiting():
            raise invalid("the hole card is turned only once no decision is awaited")
        try:
            if card_of(turned.card) != self.cards[hole - 1]:
                raise invalid("the turned card is not the one scanned face down")
        except ValueError as error:
            raise invalid(str(error)) from None
        self.revealed = True
        stamped = self._stamped(event, live.record.round_id)
        stamped.card_revealed.CopyFrom(turned)
        return await self._publish(live, stamped, event.studio_sequence, digest)

    async def _result(
        self, live: LiveRound, event: ingest_pb2.StudioEvent, digest: str
    ) -> game_service_pb2.ApplyStudioEventResponse:
        deal = self.deal
        if deal is None or not deal.finished or not self.revealed:
            raise invalid("the round's result is not complete")
        expected = round_hash(event.studio_round_id, deal.dealt)
        await self._check_hash(event, digest, expected)
        round_id = live.record.round_id
        stamped = self._stamped(event, round_id)
        stamped.round_result.round_hash = expected
        drawn = await self._save_result(
            live, deal, stamped, self._applied(event.studio_sequence, digest, round_id)
        )
        answer = await self._answer(event.studio_sequence)
        await self._settle(live.record, live.round.closes_at, deal.bets, drawn)
        live.round.settle(self.clock())
        self.live = None
        return answer
