"""Bad input gets a clear status with details, and changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio

from casino.common.v1 import common_pb2
from casino.wallet.v1 import wallet_pb2, wallet_service_pb2
from casino_kit.validation import MAX_AMOUNT_MINOR
from tests.wallet_svc.helpers import Client, RunningWallet, eur, failure, key, snapshot

ws = wallet_service_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PLAYER = "bad-input-player"
INT64_MAX = (1 << 63) - 1


@pytest_asyncio.fixture(scope="module")
async def funded(wallet: RunningWallet) -> RunningWallet:
    await wallet.client.open(PLAYER)
    await wallet.client.deposit(PLAYER, 1_000)
    reply = await wallet.client.stake("bad-input-round", ("bad-input-bet", PLAYER, 100))
    assert reply.results[0].status == wallet_pb2.STAKE_STATUS_ACCEPTED
    return wallet


def deposit(amount: int, currency: str = "EUR", player: str = PLAYER) -> ws.DepositRequest:
    return ws.DepositRequest(
        idempotency_key=key(),
        player_id=player,
        amount=common_pb2.Money(amount_minor=amount, currency=currency),
    )


def stakes(*items: tuple[str, str, int, str], token: int = 1, idem: str = "") -> object:
    return ws.PlaceStakesRequest(
        idempotency_key=idem or key(),
        table_id="t1",
        round_id="bad-input-round",
        fencing_token=token,
        stakes=[wallet_pb2.Stake(bet_id=b, player_id=p, amount=eur(a, c)) for b, p, a, c in items],
    )


def settle(*payouts: tuple[str, str, int]) -> ws.SettleRoundRequest:
    return ws.SettleRoundRequest(
        idempotency_key=key(),
        table_id="t1",
        round_id="bad-input-round",
        fencing_token=1,
        payouts=[wallet_pb2.Payout(bet_id=b, player_id=p, payout=eur(a)) for b, p, a in payouts],
    )


@dataclass(frozen=True)
class Case:
    call: Callable[[Client], Awaitable[object]]
    code: grpc.StatusCode
    reason: str
    fields: tuple[str, ...] = ()


CASES = {
    "negative amount": Case(
        lambda c: c.wallet.Deposit(deposit(-5)),
        INVALID,
        "INVALID_ARGUMENT",
        ("amount.amount_minor",),
    ),
    "zero amount": Case(
        lambda c: c.wallet.Deposit(deposit(0)),
        INVALID,
        "INVALID_ARGUMENT",
        ("amount.amount_minor",),
    ),
    "overflow-sized amount": Case(
        lambda c: c.wallet.Deposit(deposit(MAX_AMOUNT_MINOR + 1)),
        INVALID,
        "INVALID_ARGUMENT",
        ("amount.amount_minor",),
    ),
    "int64 max withdrawal": Case(
        lambda c: c.wallet.Withdraw(
            ws.WithdrawRequest(idempotency_key=key(), player_id=PLAYER, amount=eur(INT64_MAX))
        ),
        INVALID,
        "INVALID_ARGUMENT",
        ("amount.amount_minor",),
    ),
    "unknown currency": Case(
        lambda c: c.wallet.Deposit(deposit(10, "XTS")),
        INVALID,
        "INVALID_ARGUMENT",
        ("amount.currency",),
    ),
    "malformed currency": Case(
        lambda c: c.wallet.Deposit(deposit(10, "euro")),
        INVALID,
        "INVALID_ARGUMENT",
        ("amount.currency",),
    ),
    "missing amount": Case(
        lambda c: c.wallet.Deposit(ws.DepositRequest(idempotency_key=key(), player_id=PLAYER)),
        INVALID,
        "INVALID_ARGUMENT",
        ("amount",),
    ),
    "oversized key": Case(
        lambda c: c.wallet.Deposit(
            ws.DepositRequest(idempotency_key="k" * 129, player_id=PLAYER, amount=eur(1))
        ),
        INVALID,
        "INVALID_ARGUMENT",
        ("idempotency_key",),
    ),
    "unknown account": Case(
        lambda c: c.wallet.Deposit(deposit(10, player="nobody-at-all")),
        grpc.StatusCode.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    ),
    "no account in that currency": Case(
        lambda c: c.wallet.Deposit(deposit(10, "USD")),
        grpc.StatusCode.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    ),
    "unknown account for a balance": Case(
        lambda c: c.wallet.GetBalance(ws.GetBalanceRequest(player_id="nobody", currency="EUR")),
        grpc.StatusCode.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    ),
    "negative stake": Case(
        lambda c: c.wallet.PlaceStakes(stakes(("x1", PLAYER, -1, "EUR"))),
        INVALID,
        "INVALID_ARGUMENT",
        ("stakes[0].amount.amount_minor",),
    ),
    "stakes in two currencies": Case(
        lambda c: c.wallet.PlaceStakes(stakes(("x1", PLAYER, 1, "EUR"), ("x2", PLAYER, 1, "USD"))),
        INVALID,
        "CURRENCY_MISMATCH",
        ("stakes[1].amount.currency",),
    ),
    "stake in another currency than the round": Case(
        lambda c: c.wallet.PlaceStakes(stakes(("x1", PLAYER, 1, "GBP"))),
        INVALID,
        "CURRENCY_MISMATCH",
        ("stakes",),
    ),
    "no stakes, no fencing token, no bet id": Case(
        lambda c: c.wallet.PlaceStakes(stakes(token=0)),
        INVALID,
        "INVALID_ARGUMENT",
        ("fencing_token", "stakes"),
    ),
    "a stake without bet id": Case(
        lambda c: c.wallet.PlaceStakes(stakes(("", PLAYER, 1, "EUR"))),
        INVALID,
        "INVALID_ARGUMENT",
        ("stakes[0].bet_id",),
    ),
    "a negative payout": Case(
        lambda c: c.wallet.SettleRound(settle(("bad-input-bet", PLAYER, -1))),
        INVALID,
        "INVALID_ARGUMENT",
        ("payouts[0].payout.amount_minor",),
    ),
    "a payout for an unknown bet": Case(
        lambda c: c.wallet.SettleRound(
            settle(("bad-input-bet", PLAYER, 0), ("no-such-bet", PLAYER, 10))
        ),
        INVALID,
        "SETTLEMENT_MISMATCH",
        ("payouts",),
    ),
    "a settlement missing a bet": Case(
        lambda c: c.wallet.SettleRound(settle()),
        INVALID,
        "SETTLEMENT_MISMATCH",
        ("payouts",),
    ),
    "kyc status unspecified": Case(
        lambda c: c.admin.SetKycStatus(
            ws.SetKycStatusRequest(
                idempotency_key=key(), player_id=PLAYER, operator_id="op", reason="r"
            )
        ),
        INVALID,
        "INVALID_ARGUMENT",
        ("status",),
    ),
    "a statement page too large": Case(
        lambda c: c.wallet.GetStatement(
            ws.GetStatementRequest(player_id=PLAYER, currency="EUR", page_size=501)
        ),
        INVALID,
        "INVALID_ARGUMENT",
        ("page_size",),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_bad_input_is_refused_and_changes_nothing(funded: RunningWallet, case: Case) -> None:
    before = await snapshot(funded.database_url)
    details = await failure(case.call(funded.client))
    expected = (case.code, case.reason, "casino.wallet.v1")
    assert (details.code, details.reason, details.domain) == expected
    assert details.message
    assert tuple(v.field for v in details.violations) == case.fields
    assert all(v.description for v in details.violations)
    assert await snapshot(funded.database_url) == before
    assert await funded.client.balance(PLAYER) == 900


async def test_a_key_reused_for_another_stake_changes_nothing(funded: RunningWallet) -> None:
    used = key()
    first = await funded.client.wallet.PlaceStakes(stakes(("reuse-1", PLAYER, 5, "EUR"), idem=used))
    assert first.results[0].status == wallet_pb2.STAKE_STATUS_ACCEPTED
    before = await snapshot(funded.database_url)
    details = await failure(
        funded.client.wallet.PlaceStakes(stakes(("reuse-2", PLAYER, 5, "EUR"), idem=used))
    )
    assert (details.code, details.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert await snapshot(funded.database_url) == before
    assert await funded.client.balance(PLAYER) == 895
