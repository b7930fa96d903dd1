"""The refusals the engine raises: stable reasons, the ids involved, and what to fix.

Each is a ``casino_kit.errors.DomainError``: the kit maps it to a gRPC status with an
ErrorInfo (and a BadRequest for field problems), and the service stores it as the request's
answer, so a retry gets exactly the same refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from casino_kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from wallet_svc.commands import SettleRound
from wallet_svc.limits import Block
from wallet_svc.state import BetRow


def account_not_found(player_id: str, currency: str) -> NotFound:
    return NotFound(
        "ACCOUNT_NOT_FOUND",
        f"player {player_id!r} has no {currency} account",
        metadata={"player_id": player_id, "currency": currency},
    )


def currency_mismatch(field: str, expected: str) -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation(field, f"must be in the round's currency {expected}")],
        reason="CURRENCY_MISMATCH",
    )


def rfc3339(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def block_error(block: Block) -> FailedPrecondition:
    metadata = {} if block.ends_us is None else {"until": rfc3339(block.ends_us)}
    return FailedPrecondition(block.reason, f"player is blocked ({block.kind})", metadata=metadata)


def settlement_mismatch(round_id: str, why: str) -> InvalidArgument:
    error = InvalidArgument([FieldViolation("payouts", why)], reason="SETTLEMENT_MISMATCH")
    error.metadata["round_id"] = round_id
    return error


def match_payouts(command: SettleRound, bets: Mapping[str, BetRow]) -> None:
    """Every open bet of the round exactly once, with its own player; nothing else."""
    seen: set[str] = set()
    for payout in command.payouts:
        bet = bets.get(payout.bet_id)
        if bet is None:
            raise settlement_mismatch(command.round_id, f"bet {payout.bet_id!r} is not open here")
        if payout.bet_id in seen:
            raise settlement_mismatch(command.round_id, f"bet {payout.bet_id!r} is listed twice")
        if bet.player_id != payout.player_id:
            raise settlement_mismatch(command.round_id, f"bet {payout.bet_id!r} has another player")
        seen.add(payout.bet_id)
    if len(seen) != len(bets):
        missing = len(bets) - len(seen)
        raise settlement_mismatch(command.round_id, f"{missing} accepted stake(s) not listed")
