"""Contract messages to domain values: bet spots, table limits, bets."""

from __future__ import annotations

from casino.common.v1 import bet_pb2
from casino.game.v1 import game_pb2
from game_svc.bets import BetLimit, BetType, InvalidBet, Spot, TableLimits
from game_svc.rounds import BetRequest


def spot_of(message: bet_pb2.BetSpot) -> Spot:
    """The domain spot; InvalidBet for a bet type the contract does not know."""
    try:
        bet_type = BetType(message.bet_type)
    except ValueError:
        raise InvalidBet("bet_type", "is not a bet type") from None
    return Spot(bet_type, tuple(message.numbers), message.group, message.seat)


def limits_of(message: bet_pb2.TableLimits) -> TableLimits:
    per_type = {
        BetType(limit.bet_type): BetLimit(
            limit.min_stake.amount_minor, limit.max_stake.amount_minor
        )
        for limit in message.bet_limits
    }
    cap = message.max_round_stake.amount_minor if message.HasField("max_round_stake") else None
    return TableLimits(per_type, cap)


def bet_request(bet: game_pb2.Bet) -> BetRequest:
    return BetRequest(bet.bet_id, bet.player_id, spot_of(bet.spot), bet.stake.amount_minor)
