"""Contract messages to domain values: bet spots, table limits, bets, blackjack rules."""

from __future__ import annotations

from casino.common.v1 import bet_pb2
from casino.game.v1 import game_pb2
from game_svc.bets import BetLimit, BetType, InvalidBet, Spot, TableLimits
from game_svc.blackjack import Rules
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


def rules_of(config: game_pb2.TableConfig) -> Rules:
    """A blackjack table's rules; ValueError names what is out of range."""
    options = config.blackjack
    return Rules(
        decks=options.decks,
        dealer_hits_soft_17=options.dealer_hits_soft_17,
        double_after_split=options.double_after_split,
        max_hands_per_seat=options.max_hands_per_seat,
        infinite_mode=options.infinite_mode,
        seat_count=config.seat_count,
        decision_window_s=options.decision_window_seconds,
    )
