"""gRPC adapters of the wallet: translate Protobuf to ledger calls and back."""

from __future__ import annotations

import grpc

from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_kit.validation import Violations


class WalletServicer(wallet_service_pb2_grpc.WalletServiceServicer):
    """Player money movements; the ledger behind them lands with the wallet issue."""

    async def Deposit(
        self, request: wallet_service_pb2.DepositRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.DepositResponse:
        check = Violations()
        check.require(request, "idempotency_key", "player_id")
        check.money(request, "amount")
        check.raise_if_any()
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Deposit is not implemented yet")
        raise AssertionError("unreachable")


class WalletAdminServicer(wallet_service_pb2_grpc.WalletAdminServiceServicer):
    """Operator controls (KYC, limits, reconciliation); land with the wallet issue."""
