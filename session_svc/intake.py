"""Bet intake: what the session service checks before a player's bets go to the game.

The token is verified by the adapter; here, with one round trip to the store: the session,
the rate limit and exclusions, then the request's shape, that the player joined the table,
the session time limit. The game
judges the round's window by its own clock and the table limits, the wallet the money and
the loss limits; their reasons come back per bet. A bet's id is derived from the player and
the client's bet id, so a retried call stakes nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_pb2
from casino.session.v1 import session_pb2, session_service_pb2
from casino_kit.errors import FailedPrecondition
from casino_kit.validation import MAX_AMOUNT_MINOR, Violations
from session_svc.bet_stream import GameBets
from session_svc.bets import BetBook
from session_svc.sessions import Sessions
from session_svc.tables import Seating
from session_svc.tokens import SessionClaims

MAX_BETS = 50

Balance = Callable[[str, str], Awaitable[common_pb2.Money]]
"""``balance(player_id, currency)`` from the wallet, for a call in which no bet reached it."""

Response = session_service_pb2.WatchTableResponse
Tell = Callable[..., Awaitable[None]]
"""``tell(table_id, player_id, *messages)``: personal messages, in order, on the player's
stream."""


def bet_id_of(player_key: str, client_bet_id: str) -> str:
    digest = hashlib.sha256(f"{player_key}\n{client_bet_id}".encode()).hexdigest()
    return f"bet-{digest[:32]}"


def check(request: session_service_pb2.PlaceBetsRequest, currency: str) -> None:
    violations = Violations()
    violations.require(request, "idempotency_key", "table_id", "round_id")
    if not 1 <= len(request.bets) <= MAX_BETS:
        violations.add("bets", f"must hold 1 to {MAX_BETS} bets")
    seen: set[str] = set()
    for i, bet in enumerate(request.bets):
        path = f"bets[{i}]"
        if not 1 <= len(bet.client_bet_id) <= 64 or not bet.client_bet_id.isprintable():
            violations.add(f"{path}.client_bet_id", "must be 1 to 64 printable characters")
        elif bet.client_bet_id in seen:
            violations.add(f"{path}.client_bet_id", "is used twice in the call")
        seen.add(bet.client_bet_id)
        if not bet.HasField("spot") or bet.spot.bet_type == bet_pb2.BET_TYPE_UNSPECIFIED:
            violations.add(f"{path}.spot", "is required")
        if not 0 < bet.stake.amount_minor <= MAX_AMOUNT_MINOR:
            violations.add(f"{path}.stake.amount_minor", f"must be 1 to {MAX_AMOUNT_MINOR}")
        if bet.stake.currency != currency:
            violations.add(f"{path}.stake.currency", f"must be the session's currency {currency}")
    violations.raise_if_any()


class Intake:
    def __init__(
        self,
        game: GameBets,
        book: BetBook,
        sessions: Sessions,
        seating: Seating,
        balance: Balance,
        tell: Tell,
    ) -> None:
        self.game = game
        self.book = book
        self.sessions = sessions
        self.seating = seating
        self.balance = balance
        self.tell = tell

    async def place(
        self, claims: SessionClaims, request: session_service_pb2.PlaceBetsRequest
    ) -> session_service_pb2.PlaceBetsResponse:
        """The bets of the caller of verified ``claims``. Its session, limits, rate and seat
        are read in one round trip to the store; the answer waits for the game's."""
        principal, seat = await asyncio.gather(
            self.sessions.admit(claims),
            self.seating.seat_of(request.table_id, claims.platform_player_id),
        )
        session = principal.session
        player = session.platform_player_id
        check(request, session.currency)
        if seat is None:
            raise FailedPrecondition("NOT_AT_TABLE", f"join table {request.table_id} first")
        left = principal.rg.session_time_left(session.opened_at, self.sessions.clock())
        if left is not None and left <= 0:
            raise FailedPrecondition(
                "LIMIT_EXCEEDED_SESSION_TIME", "the session time limit is used up"
            )
        bets = [
            game_pb2.Bet(
                bet_id=bet_id_of(player, bet.client_bet_id),
                player_id=player,
                spot=bet.spot,
                stake=bet.stake,
            )
            for bet in request.bets
        ]
        results = await self.game.place(request.table_id, request.round_id, bets)
        response = session_service_pb2.PlaceBetsResponse()
        accepted = []
        balance: common_pb2.Money | None = None
        for asked, bet, result in zip(request.bets, bets, results, strict=True):
            response.results.append(
                session_pb2.PlayerBetResult(
                    client_bet_id=asked.client_bet_id,
                    bet_id=bet.bet_id,
                    status=result.status,
                    reason=result.reason,
                )
            )
            if result.HasField("balance_after"):
                balance = result.balance_after
            if result.status == bet_pb2.BET_STATUS_ACCEPTED:
                accepted.append(
                    session_pb2.BetAccepted(
                        bet_id=bet.bet_id,
                        client_bet_id=asked.client_bet_id,
                        round_id=request.round_id,
                        spot=bet.spot,
                        stake=bet.stake,
                    )
                )
        if balance is None:
            balance = await self.balance(player, session.currency)
        response.balance.CopyFrom(balance)
        if accepted:
            changed = session_pb2.BalanceChanged(
                balance=balance,
                cause=session_pb2.BALANCE_CHANGE_CAUSE_BET_PLACED,
                round_id=request.round_id,
            )
            told = [Response(bet_accepted=taken) for taken in accepted]
            await asyncio.gather(
                self.book.record(player, accepted),
                self.tell(
                    request.table_id,
                    player,
                    *told,
                    Response(balance_changed=changed),
                ),
            )
        return response
