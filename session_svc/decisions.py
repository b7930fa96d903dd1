"""Blackjack decisions: checked for shape and seat here, judged by the game.

The game owns the deadline (by its clock) and the allowed actions. The player's idempotency
key names the decision: the game's key and the extra bet's id (DOUBLE, SPLIT, INSURANCE)
are derived from it and the player, so a retried call stakes nothing twice and two players'
keys never meet.
"""

from __future__ import annotations

import hashlib

from casino.common.v1 import bet_pb2
from casino.game.v1 import game_service_pb2, game_service_pb2_grpc
from casino.session.v1 import session_pb2, session_service_pb2
from casino_kit.errors import FailedPrecondition
from casino_kit.validation import Violations
from session_svc.intake import Balance, Tell, bet_id_of
from session_svc.sessions import Principal
from session_svc.tables import Seating
from session_svc.upstream import relayed

EXTRA_STAKED = frozenset(
    {
        bet_pb2.BLACKJACK_ACTION_DOUBLE,
        bet_pb2.BLACKJACK_ACTION_SPLIT,
        bet_pb2.BLACKJACK_ACTION_INSURANCE,
    }
)
ACTIONS = frozenset(range(1, 6))


def check(request: session_service_pb2.SubmitDecisionRequest) -> None:
    violations = Violations()
    violations.require(request, "idempotency_key", "table_id", "round_id", "hand")
    if not 1 <= len(request.idempotency_key) <= 128:
        violations.add("idempotency_key", "must be 1 to 128 characters")
    if request.action not in ACTIONS:
        violations.add("action", "must be HIT, STAND, DOUBLE, SPLIT or INSURANCE")
    violations.raise_if_any()


class Decisions:
    def __init__(
        self,
        game: game_service_pb2_grpc.GameServiceStub,
        seating: Seating,
        balance: Balance,
        tell: Tell,
    ) -> None:
        self.game = game
        self.seating = seating
        self.balance = balance
        self.tell = tell

    async def submit(
        self, principal: Principal, request: session_service_pb2.SubmitDecisionRequest
    ) -> session_service_pb2.SubmitDecisionResponse:
        check(request)
        session = principal.session
        player = session.platform_player_id
        if await self.seating.seat_of(request.table_id, player) is None:
            raise FailedPrecondition("NOT_AT_TABLE", f"join table {request.table_id} first")
        name = f"{player}\n{request.idempotency_key}"
        staking = request.action in EXTRA_STAKED
        with relayed():
            answer = await self.game.SubmitDecision(
                game_service_pb2.SubmitDecisionRequest(
                    idempotency_key=hashlib.sha256(name.encode()).hexdigest(),
                    table_id=request.table_id,
                    round_id=request.round_id,
                    player_id=player,
                    seat=request.seat,
                    hand=request.hand,
                    action=request.action,
                    extra_bet_id=(
                        bet_id_of(player, f"decision:{request.idempotency_key}") if staking else ""
                    ),
                )
            )
        response = session_service_pb2.SubmitDecisionResponse(action=answer.action)
        if not answer.HasField("balance_after"):
            response.balance.CopyFrom(await self.balance(player, session.currency))
            return response
        response.extra_stake.CopyFrom(answer.extra_stake)
        response.balance.CopyFrom(answer.balance_after)
        changed = session_pb2.BalanceChanged(
            balance=answer.balance_after,
            cause=session_pb2.BALANCE_CHANGE_CAUSE_BET_PLACED,
            round_id=request.round_id,
        )
        await self.tell(
            request.table_id,
            player,
            session_service_pb2.WatchTableResponse(balance_changed=changed),
        )
        return response
