"""Domain results to the contract's messages: cards, and each game's ``RoundResult`` part.

Kept apart from the rules so they stay free of Protobuf, and from ``server.py`` so the
round loop (RNG and studio paths alike) builds results the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from game_svc import blackjack
from game_svc.baccarat import Coup
from game_svc.blackjack_round import BlackjackRound, Key
from game_svc.cards import Card, Rank, Suit
from game_svc.roulette import check_pocket


def card_message(card: Card) -> common_pb2.Card:
    return common_pb2.Card(
        rank=common_pb2.CardRank.ValueType(card.rank), suit=common_pb2.CardSuit.ValueType(card.suit)
    )


def card_of(message: common_pb2.Card) -> Card:
    """The card a message names; ValueError for a face-down (unspecified) or unknown value."""
    try:
        return Card(Rank(message.rank), Suit(message.suit))
    except ValueError:
        raise ValueError(f"not a face-up card: rank {message.rank}, suit {message.suit}") from None


def roulette_result(pocket: int) -> table_event_pb2.RouletteResult:
    check_pocket(pocket)
    return table_event_pb2.RouletteResult(pocket=pocket)


def baccarat_result(coup: Coup) -> table_event_pb2.BaccaratResult:
    return table_event_pb2.BaccaratResult(
        player_cards=[card_message(c) for c in coup.player],
        banker_cards=[card_message(c) for c in coup.banker],
        player_total=coup.player_total,
        banker_total=coup.banker_total,
        winner=table_event_pb2.BaccaratWinner.ValueType(coup.winner),
        player_pair=coup.player_pair,
        banker_pair=coup.banker_pair,
        natural=coup.natural,
    )


def blackjack_result(
    round_: BlackjackRound, players: Mapping[Key, str]
) -> table_event_pb2.BlackjackResult:
    """The finished round; ``players`` names the player of each seat (infinite mode: the
    keys are player ids already, and every hand is at seat 0)."""
    dealer = blackjack.value(round_.dealer)
    hands = []
    for key, play in round_.plays.items():
        outcomes = round_.result(key).hands
        for number, (hand, settled) in enumerate(zip(play.hands, outcomes, strict=True), 1):
            value = hand.value
            hands.append(
                table_event_pb2.BlackjackHand(
                    seat=0 if isinstance(key, str) else key,
                    hand=number,
                    player_id=players.get(key, key if isinstance(key, str) else ""),
                    cards=[card_message(c) for c in hand.cards],
                    total=value.total,
                    soft=value.soft,
                    blackjack=hand.blackjack,
                    busted=value.busted,
                    doubled=hand.doubled,
                    outcome=bet_pb2.BetOutcome.ValueType(settled.settlement.outcome),
                )
            )
    return table_event_pb2.BlackjackResult(
        dealer_cards=[card_message(c) for c in round_.dealer],
        dealer_total=dealer.total,
        dealer_blackjack=blackjack.is_natural(round_.dealer),
        dealer_busted=dealer.busted,
        hands=hands,
    )
