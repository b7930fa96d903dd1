"""The game service's clients of the RNG and the wallet: one method per step of a round.

Every call carries the idempotency key the contracts name ("commit:<round>", "draw:<round>",
"settle:<round>"...), so a step retried after a crash or a lost answer has one effect.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from casino.common.v1 import common_pb2
from casino.rng.v1 import rng_pb2, rng_service_pb2, rng_service_pb2_grpc
from casino.wallet.v1 import wallet_pb2, wallet_service_pb2, wallet_service_pb2_grpc
from game_svc.outcomes import BACCARAT_DECKS, Game


def draw_spec(game: Game, decks: int) -> rng_pb2.DrawSpec:
    """A pocket for roulette; a shuffled shoe of ``decks`` decks for the card games."""
    if game is Game.ROULETTE:
        return rng_pb2.DrawSpec(roulette=rng_pb2.RouletteDraw())
    return rng_pb2.DrawSpec(shuffle=rng_pb2.ShuffleDraw(decks=decks))


class Rng:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = rng_service_pb2_grpc.RngServiceStub(channel)

    async def commit(self, table_id: str, round_id: str) -> common_pb2.FairnessCommitment:
        response: rng_service_pb2.CommitSeedResponse = await self._stub.CommitSeed(
            rng_service_pb2.CommitSeedRequest(
                idempotency_key=f"commit:{round_id}", round_id=round_id, table_id=table_id
            )
        )
        return response.commitment

    async def draw(
        self, game: Game, round_id: str, client_seed: str, decks: int = BACCARAT_DECKS
    ) -> list[int]:
        response = await self._stub.DrawOutcome(
            rng_service_pb2.DrawOutcomeRequest(
                idempotency_key=f"draw:{round_id}",
                round_id=round_id,
                client_seed=client_seed,
                draw=draw_spec(game, decks),
            )
        )
        return list(response.outcome)

    async def reveal(self, round_id: str) -> common_pb2.FairnessProof:
        response: rng_service_pb2.RevealSeedResponse = await self._stub.RevealSeed(
            rng_service_pb2.RevealSeedRequest(
                idempotency_key=f"reveal:{round_id}", round_id=round_id
            )
        )
        return response.proof


class Wallet:
    """Money moves of a table's owner, each fenced by its ownership token."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = wallet_service_pb2_grpc.WalletServiceStub(channel)

    async def stake(
        self,
        key: str,
        table_id: str,
        round_id: str,
        fence: int,
        stakes: Sequence[wallet_pb2.Stake],
    ) -> list[wallet_pb2.StakeResult]:
        response = await self._stub.PlaceStakes(
            wallet_service_pb2.PlaceStakesRequest(
                idempotency_key=key,
                table_id=table_id,
                round_id=round_id,
                fencing_token=fence,
                stakes=stakes,
            )
        )
        return list(response.results)

    async def settle(
        self, table_id: str, round_id: str, fence: int, payouts: Sequence[wallet_pb2.Payout]
    ) -> wallet_service_pb2.SettleRoundResponse:
        response: wallet_service_pb2.SettleRoundResponse = await self._stub.SettleRound(
            wallet_service_pb2.SettleRoundRequest(
                idempotency_key=f"settle:{round_id}",
                table_id=table_id,
                round_id=round_id,
                fencing_token=fence,
                payouts=payouts,
            )
        )
        return response

    async def refund(
        self, table_id: str, round_id: str, fence: int, reason: str
    ) -> wallet_service_pb2.RefundRoundResponse:
        response: wallet_service_pb2.RefundRoundResponse = await self._stub.RefundRound(
            wallet_service_pb2.RefundRoundRequest(
                idempotency_key=f"refund:{round_id}",
                table_id=table_id,
                round_id=round_id,
                fencing_token=fence,
                reason=reason,
            )
        )
        return response
