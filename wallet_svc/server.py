"""gRPC servicers: check requests, map them to domain commands, map results back.

Nothing here decides about money. Input that is wrong whatever the ledger holds (missing
fields, non-positive or oversized amounts, unknown currencies, mixed currencies) fails with
INVALID_ARGUMENT and every offending field, before any storage is touched. Mutating calls
then go through the wallet's group commit; their answer, success or refusal, is the stored
one, so a retry with the same key gets the same bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from sqlalchemy.exc import DBAPIError

from casino.common.v1 import common_pb2
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_kit.errors import FieldViolation, InvalidArgument, Unavailable
from casino_kit.validation import MAX_AMOUNT_MINOR, Violations
from wallet_svc import convert, currencies
from wallet_svc.commands import (
    Command,
    Deposit,
    LimitRequest,
    OpenAccount,
    PayoutItem,
    PlaceStakes,
    RefundRound,
    Result,
    SetBlock,
    SetKyc,
    SetLimits,
    SettleRound,
    StakeItem,
    Withdraw,
)
from wallet_svc.group_commit import Stopped
from wallet_svc.idempotency import fingerprint
from wallet_svc.service import Job, Wallet

M = TypeVar("M", bound=Message)

MAX_KEY_LENGTH = 128
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 1024
MAX_STAKES = 1000
MAX_FENCING_TOKEN = (1 << 63) - 1
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

WALLET = "/casino.wallet.v1.WalletService/"
ADMIN = "/casino.wallet.v1.WalletAdminService/"


# --- validation -----------------------------------------------------------------------------
def _key(v: Violations, request: Any) -> None:
    key: str = request.idempotency_key
    if not key:
        v.add("idempotency_key", "is required")
    elif len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        v.add("idempotency_key", f"must be at most {MAX_KEY_LENGTH} printable ASCII characters")


def _ids(v: Violations, message: Any, *names: str, prefix: str = "") -> None:
    for name in names:
        value: str = getattr(message, name)
        if not value:
            v.add(prefix + name, "is required")
        elif len(value) > MAX_ID_LENGTH:
            v.add(prefix + name, f"must be at most {MAX_ID_LENGTH} characters")


def _text(v: Violations, message: Any, name: str, *, required: bool = False) -> None:
    value: str = getattr(message, name)
    if required and not value:
        v.add(name, "is required")
    elif len(value) > MAX_TEXT_LENGTH:
        v.add(name, f"must be at most {MAX_TEXT_LENGTH} characters")


def _currency(v: Violations, path: str, code: str) -> bool:
    if not code:
        v.add(path, "is required")
    elif len(code) != 3 or not code.isascii() or not code.isupper():
        v.add(path, "must be an ISO-4217 code such as EUR")
    elif not currencies.is_supported(code):
        v.add(path, f"{code} is not a currency the wallet keeps accounts in")
    else:
        return True
    return False


def _money(
    v: Violations, parent: Any, name: str, path: str, *, allow_zero: bool = False
) -> str | None:
    """Check a Money field; return its currency when the whole of it is valid."""
    if not parent.HasField(name):
        v.add(path, "is required")
        return None
    value: common_pb2.Money = getattr(parent, name)
    amount = value.amount_minor
    valid = True
    if amount < 0 or (amount == 0 and not allow_zero):
        v.add(f"{path}.amount_minor", "must be >= 0" if allow_zero else "must be positive")
        valid = False
    elif amount > MAX_AMOUNT_MINOR:
        v.add(f"{path}.amount_minor", f"must be at most {MAX_AMOUNT_MINOR}")
        valid = False
    if not _currency(v, f"{path}.currency", value.currency):
        return None
    return value.currency if valid else None


def _fencing(v: Violations, request: Any) -> None:
    token: int = request.fencing_token
    if token == 0:
        v.add("fencing_token", "is required")
    elif token > MAX_FENCING_TOKEN:
        v.add("fencing_token", f"must be at most {MAX_FENCING_TOKEN}")


def _one_currency(found: list[tuple[str, str]], field: str) -> str:
    """All items share one currency, or CURRENCY_MISMATCH naming the first that differs."""
    first = found[0][1] if found else ""
    for path, code in found:
        if code != first:
            raise InvalidArgument(
                [FieldViolation(path, f"must be {first} like the rest of {field}")],
                reason="CURRENCY_MISMATCH",
            )
    return first


def _us(request: Any, name: str) -> int | None:
    return convert.micros(getattr(request, name)) if request.HasField(name) else None


# --- servicers ------------------------------------------------------------------------------
class _Base:
    def __init__(self, wallet: Wallet) -> None:
        self.wallet = wallet

    async def _mutate(
        self,
        method: str,
        request: Any,
        command: Command,
        render: Callable[[Result], bytes],
        response: type[M],
        context: grpc.aio.ServicerContext,
    ) -> M:
        job = Job(method, request.idempotency_key, fingerprint(method, request), command, render)
        try:
            answer = await self.wallet.submit(job)
        except (DBAPIError, Stopped) as error:
            raise Unavailable("STORAGE_UNAVAILABLE", "the ledger is unavailable; retry") from error
        if answer.ok:
            return response.FromString(answer.body)
        status = answer.status()
        await context.abort(status.code, status.details, status.trailing_metadata)
        raise AssertionError("abort returned")  # pragma: no cover


class WalletServicer(_Base, wallet_service_pb2_grpc.WalletServiceServicer):
    """Player money: accounts, deposits, withdrawals, stakes, settlement, refunds, reads."""

    async def OpenAccount(
        self, request: wallet_service_pb2.OpenAccountRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.OpenAccountResponse:
        v = Violations()
        _key(v, request)
        _ids(v, request, "player_id")
        _currency(v, "currency", request.currency)
        v.raise_if_any()
        command = OpenAccount(request.player_id, request.currency)
        return await self._mutate(
            WALLET + "OpenAccount",
            request,
            command,
            convert.account_opened,
            wallet_service_pb2.OpenAccountResponse,
            context,
        )

    def _cash(self, request: Any) -> tuple[str, int]:
        v = Violations()
        _key(v, request)
        _ids(v, request, "player_id")
        currency = _money(v, request, "amount", "amount")
        _text(v, request, "external_ref")
        v.raise_if_any()
        return currency or "", request.amount.amount_minor

    async def Deposit(
        self, request: wallet_service_pb2.DepositRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.DepositResponse:
        currency, amount = self._cash(request)
        command = Deposit(request.player_id, currency, amount, request.external_ref)
        return await self._mutate(
            WALLET + "Deposit",
            request,
            command,
            convert.deposited,
            wallet_service_pb2.DepositResponse,
            context,
        )

    async def Withdraw(
        self, request: wallet_service_pb2.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.WithdrawResponse:
        currency, amount = self._cash(request)
        command = Withdraw(request.player_id, currency, amount, request.external_ref)
        return await self._mutate(
            WALLET + "Withdraw",
            request,
            command,
            convert.withdrawn,
            wallet_service_pb2.WithdrawResponse,
            context,
        )

    async def PlaceStakes(
        self, request: wallet_service_pb2.PlaceStakesRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.PlaceStakesResponse:
        v = Violations()
        _key(v, request)
        _ids(v, request, "table_id", "round_id")
        _fencing(v, request)
        if not request.stakes:
            v.add("stakes", "is required (at least one stake)")
        elif len(request.stakes) > MAX_STAKES:
            v.add("stakes", f"must hold at most {MAX_STAKES} stakes")
        found = []
        for index, stake in enumerate(request.stakes):
            prefix = f"stakes[{index}]."
            _ids(v, stake, "bet_id", "player_id", prefix=prefix)
            code = _money(v, stake, "amount", prefix + "amount")
            if code:
                found.append((prefix + "amount.currency", code))
        v.raise_if_any()
        currency = _one_currency(found, "stakes")
        command = PlaceStakes(
            request.table_id,
            request.round_id,
            request.fencing_token,
            currency,
            tuple(StakeItem(s.bet_id, s.player_id, s.amount.amount_minor) for s in request.stakes),
        )
        return await self._mutate(
            WALLET + "PlaceStakes",
            request,
            command,
            convert.stakes_placed,
            wallet_service_pb2.PlaceStakesResponse,
            context,
        )

    async def SettleRound(
        self, request: wallet_service_pb2.SettleRoundRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.SettleRoundResponse:
        v = Violations()
        _key(v, request)
        _ids(v, request, "table_id", "round_id")
        _fencing(v, request)
        if len(request.payouts) > MAX_STAKES * 10:
            v.add("payouts", f"must hold at most {MAX_STAKES * 10} payouts")
        found = []
        for index, payout in enumerate(request.payouts):
            prefix = f"payouts[{index}]."
            _ids(v, payout, "bet_id", "player_id", prefix=prefix)
            code = _money(v, payout, "payout", prefix + "payout", allow_zero=True)
            if code:
                found.append((prefix + "payout.currency", code))
        v.raise_if_any()
        currency = _one_currency(found, "payouts")
        payouts = tuple(
            PayoutItem(p.bet_id, p.player_id, p.payout.amount_minor) for p in request.payouts
        )
        command = SettleRound(
            request.table_id, request.round_id, request.fencing_token, currency, payouts
        )
        return await self._mutate(
            WALLET + "SettleRound",
            request,
            command,
            convert.round_settled,
            wallet_service_pb2.SettleRoundResponse,
            context,
        )

    async def RefundRound(
        self, request: wallet_service_pb2.RefundRoundRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.RefundRoundResponse:
        v = Violations()
        _key(v, request)
        _ids(v, request, "table_id", "round_id")
        _fencing(v, request)
        _text(v, request, "reason", required=True)
        v.raise_if_any()
        command = RefundRound(
            request.table_id, request.round_id, request.fencing_token, request.reason
        )
        return await self._mutate(
            WALLET + "RefundRound",
            request,
            command,
            convert.round_refunded,
            wallet_service_pb2.RefundRoundResponse,
            context,
        )

    async def GetBalance(
        self, request: wallet_service_pb2.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.GetBalanceResponse:
        v = Violations()
        _ids(v, request, "player_id")
        _currency(v, "currency", request.currency)
        v.raise_if_any()
        found = await self.wallet.balance(request.player_id, request.currency)
        return wallet_service_pb2.GetBalanceResponse(
            balance=convert.money(found.balance, found.currency),
            in_play=convert.money(found.in_play, found.currency),
            kyc_status=convert.KYC_TO_PROTO[found.kyc],
        )

    async def GetStatement(
        self, request: wallet_service_pb2.GetStatementRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.GetStatementResponse:
        v = Violations()
        _ids(v, request, "player_id")
        _currency(v, "currency", request.currency)
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            v.add("page_size", f"must be from 0 to {MAX_PAGE_SIZE}")
        cursor = _cursor(v, request.page_token)
        v.raise_if_any()
        account_id, entries, more = await self.wallet.statement(
            request.player_id,
            request.currency,
            start_us=_us(request, "start_time"),
            end_us=_us(request, "end_time"),
            page_size=request.page_size or DEFAULT_PAGE_SIZE,
            before_id=None if cursor is None else cursor[1],
        )
        if cursor is not None and cursor[0] != account_id:
            raise InvalidArgument([FieldViolation("page_token", "belongs to another account")])
        response = wallet_service_pb2.GetStatementResponse(
            entries=[convert.statement_entry(e, request.currency) for e in entries]
        )
        if more and entries:
            token = f"{account_id}.{entries[-1].id}".encode()
            response.next_page_token = base64.urlsafe_b64encode(token).decode()
        return response


def _cursor(v: Violations, token: str) -> tuple[int, int] | None:
    """Decode a page token: (account id, id of the last entry returned)."""
    if not token:
        return None
    try:
        account, last = base64.urlsafe_b64decode(token.encode()).decode().split(".")
        return int(account), int(last)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        v.add("page_token", "is not a token this service issued")
        return None


class WalletAdminServicer(_Base, wallet_service_pb2_grpc.WalletAdminServiceServicer):
    """Operator control: KYC, responsible-gaming limits and blocks, reconciliation."""

    async def SetKycStatus(
        self, request: wallet_service_pb2.SetKycStatusRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.SetKycStatusResponse:
        v = Violations()
        _key(v, request)
        _ids(v, request, "player_id", "operator_id")
        status = convert.KYC_FROM_PROTO.get(request.status)
        if status is None:
            v.add("status", "is required")
        _text(v, request, "reason", required=True)
        v.raise_if_any()
        assert status is not None
        command = SetKyc(request.player_id, status, request.operator_id, request.reason)
        return await self._mutate(
            ADMIN + "SetKycStatus",
            request,
            command,
            convert.kyc_set,
            wallet_service_pb2.SetKycStatusResponse,
            context,
        )

    async def SetLimits(
        self, request: wallet_service_pb2.SetLimitsRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.SetLimitsResponse:
        v = Violations()
        _key(v, request)
        _ids(v, request, "player_id")
        _currency(v, "currency", request.currency)
        _text(v, request, "operator_id")
        _text(v, request, "reason")
        if not request.limits:
            v.add("limits", "is required (at least one limit)")
        wanted: list[LimitRequest] = []
        seen: set[tuple[int, int]] = set()
        found = []
        for index, limit in enumerate(request.limits):
            prefix = f"limits[{index}]."
            kind = convert.LIMIT_KIND_FROM_PROTO.get(limit.kind)
            period = convert.PERIOD_FROM_PROTO.get(limit.period)
            if kind is None:
                v.add(prefix + "kind", "is required")
            if period is None:
                v.add(prefix + "period", "is required")
            if (limit.kind, limit.period) in seen:
                v.add(prefix + "period", "is listed twice for this kind")
            seen.add((limit.kind, limit.period))
            amount = None
            if limit.HasField("amount"):
                code = _money(v, limit, "amount", prefix + "amount", allow_zero=True)
                if code:
                    found.append((prefix + "amount.currency", code))
                amount = limit.amount.amount_minor
            if kind is not None and period is not None:
                wanted.append(LimitRequest(kind, period, amount))
        v.raise_if_any()
        _one_currency([("currency", request.currency), *found], "the request")
        command = SetLimits(
            request.player_id,
            request.currency,
            tuple(wanted),
            request.operator_id,
            request.reason,
        )
        return await self._mutate(
            ADMIN + "SetLimits",
            request,
            command,
            convert.limits_set,
            wallet_service_pb2.SetLimitsResponse,
            context,
        )

    async def GetLimits(
        self, request: wallet_service_pb2.GetLimitsRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.GetLimitsResponse:
        v = Violations()
        _ids(v, request, "player_id")
        _currency(v, "currency", request.currency)
        v.raise_if_any()
        _, views, block = await self.wallet.limits(request.player_id, request.currency)
        state = convert.limits_state(views, block, request.currency)
        return wallet_service_pb2.GetLimitsResponse(state=state)

    async def SetSelfExclusion(
        self,
        request: wallet_service_pb2.SetSelfExclusionRequest,
        context: grpc.aio.ServicerContext,
    ) -> wallet_service_pb2.SetSelfExclusionResponse:
        v = Violations()
        _key(v, request)
        _ids(v, request, "player_id")
        kind = convert.BLOCK_FROM_PROTO.get(request.kind)
        if kind is None:
            v.add("kind", "is required")
        _text(v, request, "operator_id")
        _text(v, request, "reason")
        v.raise_if_any()
        assert kind is not None
        command = SetBlock(
            request.player_id,
            kind,
            _us(request, "ends_at"),
            request.operator_id,
            request.reason,
        )
        return await self._mutate(
            ADMIN + "SetSelfExclusion",
            request,
            command,
            convert.block_set,
            wallet_service_pb2.SetSelfExclusionResponse,
            context,
        )

    async def Reconcile(
        self, request: wallet_service_pb2.ReconcileRequest, context: grpc.aio.ServicerContext
    ) -> wallet_service_pb2.ReconcileResponse:
        v = Violations()
        if request.currency:
            _currency(v, "currency", request.currency)
        v.raise_if_any()
        now, found = await self.wallet.reconcile(
            request.currency or None, _us(request, "start_time"), _us(request, "end_time")
        )
        currencies_ = [convert.reconciliation(r) for r in found]
        return wallet_service_pb2.ReconcileResponse(
            ok=all(c.ok for c in currencies_),
            currencies=currencies_,
            generated_at=convert.timestamp(now),
        )
