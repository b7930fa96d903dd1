"""The round state machine: OPEN -> BETS_CLOSED -> RESULT -> SETTLED, or VOIDED before SETTLED.

Pure and synchronous: the caller passes the server clock in, and persists or publishes
what the round returns. One transition method checks and logs every phase change (the
aiortc ``__setState`` habit); any other change raises ``IllegalTransition``.

Bets are judged by the server clock: accepted only while OPEN and strictly before
``closes_at`` (invariant 5). Bet registration is idempotent by bet id: the same id with the
same payload gets the first answer again, whatever it was; the same id with another
payload raises ``BetIdReused``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from casino_kit.errors import AlreadyExists, FailedPrecondition
from game_svc.bets import BetType, InvalidBet, Spot, TableLimits

log = logging.getLogger(__name__)


class Phase(IntEnum):
    """Values equal ``casino.common.v1.RoundPhase``."""

    OPEN = 1
    BETS_CLOSED = 2
    RESULT = 3
    SETTLED = 4
    VOIDED = 5


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.OPEN: frozenset({Phase.BETS_CLOSED, Phase.VOIDED}),
    Phase.BETS_CLOSED: frozenset({Phase.RESULT, Phase.VOIDED}),
    Phase.RESULT: frozenset({Phase.SETTLED, Phase.VOIDED}),
    Phase.SETTLED: frozenset(),
    Phase.VOIDED: frozenset(),
}


class IllegalTransition(FailedPrecondition):
    """A phase change the state machine does not allow.

    Its reason is ROUND_ALREADY_SETTLED or ROUND_ALREADY_REFUNDED from a final phase;
    otherwise ILLEGAL_TRANSITION, an internal fault the adapter must not let reach a client
    as such (for studio events it maps to INVALID_STUDIO_EVENT).
    """

    def __init__(self, round_id: str, old: Phase, new: Phase) -> None:
        reason = {
            Phase.SETTLED: "ROUND_ALREADY_SETTLED",
            Phase.VOIDED: "ROUND_ALREADY_REFUNDED",
        }.get(old, "ILLEGAL_TRANSITION")
        super().__init__(
            reason,
            f"round {round_id}: {old.name} -> {new.name} is not allowed",
            metadata={"round_id": round_id},
        )
        self.old = old
        self.new = new


class BetIdReused(AlreadyExists):
    """The bet id was registered before with a different payload; nothing changed."""

    def __init__(self, bet_id: str) -> None:
        super().__init__(
            "IDEMPOTENCY_KEY_REUSED",
            f"bet {bet_id} was placed before with a different payload",
            metadata={"bet_id": bet_id},
        )


@dataclass(frozen=True)
class BetRequest:
    """A bet as received: the payload that bet-id idempotency compares."""

    bet_id: str
    player_id: str
    spot: Spot
    stake: int


@dataclass(frozen=True)
class BetAnswer:
    """The round's answer to a bet: accepted, or rejected with a contract reason."""

    bet_id: str
    accepted: bool
    reason: str = ""
    received_at: datetime | None = None


Validator = Callable[[Spot], object]
"""Checks a spot against the game's layout; raises InvalidBet."""

Admission = Callable[[BetRequest, tuple[BetRequest, ...]], str | None]
"""A game's own per-bet rule given the bets accepted so far (blackjack: SEAT_TAKEN)."""


class Round:
    """One round of one table and the bets it received, in receipt order."""

    def __init__(
        self,
        round_id: str,
        table_id: str,
        opened_at: datetime,
        closes_at: datetime,
        limits: TableLimits,
        validate: Validator,
        admit: Admission | None = None,
    ) -> None:
        if closes_at <= opened_at:
            raise ValueError("a betting window closes after it opens")
        self.round_id = round_id
        self.table_id = table_id
        self.opened_at = opened_at
        self.closes_at = closes_at
        self.limits = limits
        self._validate = validate
        self._admit = admit
        self._phase = Phase.OPEN
        self.phase_times: dict[Phase, datetime] = {Phase.OPEN: opened_at}
        self._bets: dict[str, tuple[BetRequest, BetAnswer]] = {}
        self._on_spot: dict[tuple[str, Spot], int] = {}
        self._in_round: dict[str, int] = {}

    @property
    def phase(self) -> Phase:
        return self._phase

    def _set_phase(self, new: Phase, now: datetime) -> None:
        """The one place the phase changes: check, log old -> new, record when."""
        old = self._phase
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(self.round_id, old, new)
        log.info("round %s of table %s: %s -> %s", self.round_id, self.table_id, old.name, new.name)
        self._phase = new
        self.phase_times[new] = now

    def close_bets(self, now: datetime) -> None:
        """ "No more bets": at ``closes_at`` for RNG tables, or when the studio says so."""
        self._set_phase(Phase.BETS_CLOSED, now)

    def close_if_due(self, now: datetime) -> bool:
        """Close betting when the server clock reached ``closes_at``; True if it closed now."""
        if self._phase is Phase.OPEN and now >= self.closes_at:
            self.close_bets(now)
            return True
        return False

    def record_result(self, now: datetime) -> None:
        self._set_phase(Phase.RESULT, now)

    def settle(self, now: datetime) -> None:
        self._set_phase(Phase.SETTLED, now)

    def void(self, now: datetime) -> None:
        self._set_phase(Phase.VOIDED, now)

    def place(self, bet: BetRequest, now: datetime) -> BetAnswer:
        """Register a bet and answer it; a repeat of the same bet gets the same answer.

        A bet type the table does not offer (or insurance, which comes by decision) is
        rejected with INVALID_BET. Raises InvalidBet for an offered type whose positions do
        not fit the layout (the whole request fails, so nothing is recorded) and BetIdReused
        for a known id with another payload.
        """
        known = self._bets.get(bet.bet_id)
        if known is not None:
            if known[0] != bet:
                raise BetIdReused(bet.bet_id)
            return known[1]
        offered = bet.spot.bet_type in self.limits.per_type
        if offered and bet.spot.bet_type is not BetType.BLACKJACK_INSURANCE:
            self._validate(bet.spot)
            if bet.stake <= 0:
                raise InvalidBet("stake", "must be positive")
            reason = self._rejection(bet, now)
        else:
            reason = "INVALID_BET"
        answer = BetAnswer(bet.bet_id, reason is None, reason or "", now)
        self._bets[bet.bet_id] = (bet, answer)
        if answer.accepted:
            key = (bet.player_id, bet.spot)
            self._on_spot[key] = self._on_spot.get(key, 0) + bet.stake
            self._in_round[bet.player_id] = self._in_round.get(bet.player_id, 0) + bet.stake
        return answer

    def _rejection(self, bet: BetRequest, now: datetime) -> str | None:
        if self._phase is not Phase.OPEN or now >= self.closes_at:
            return "BETTING_CLOSED"
        reason = self.limits.check(
            bet.spot.bet_type,
            bet.stake,
            on_spot_before=self._on_spot.get((bet.player_id, bet.spot), 0),
            in_round_before=self._in_round.get(bet.player_id, 0),
        )
        if reason is None and self._admit is not None:
            reason = self._admit(bet, self.accepted)
        return reason

    def refuse(self, bet_id: str, reason: str) -> BetAnswer:
        """The wallet refused an accepted bet's stake: it becomes rejected with ``reason``."""
        bet, answer = self._bets[bet_id]
        if not answer.accepted:
            return answer
        refused = BetAnswer(bet_id, False, reason, answer.received_at)
        self._bets[bet_id] = (bet, refused)
        key = (bet.player_id, bet.spot)
        self._on_spot[key] -= bet.stake
        self._in_round[bet.player_id] -= bet.stake
        return refused

    @property
    def accepted(self) -> tuple[BetRequest, ...]:
        """Accepted bets in receipt order: what settlement or a void must cover once each."""
        return tuple(bet for bet, answer in self._bets.values() if answer.accepted)

    @property
    def answers(self) -> tuple[BetAnswer, ...]:
        return tuple(answer for _, answer in self._bets.values())

    @property
    def total_stake(self) -> int:
        return sum(bet.stake for bet in self.accepted)
