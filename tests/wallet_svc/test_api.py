"""The wallet through gRPC, on SQLite and on PostgreSQL: the operations and their rules."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from casino.common.v1 import limits_pb2
from casino.wallet.v1 import wallet_pb2, wallet_service_pb2
from tests.wallet_svc.helpers import (
    RunningWallet,
    accepted,
    eur,
    failure,
    key,
    reasons,
    snapshot,
)

ws = wallet_service_pb2
FAILED = grpc.StatusCode.FAILED_PRECONDITION


def ids(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_stake_and_settle_a_round(wallet: RunningWallet) -> None:
    c = wallet.client
    b = ids("bet")
    alice, bob, round_id = ids("alice"), ids("bob"), ids("round")
    opened = await c.open(alice)
    assert opened.account.kyc_status == wallet_pb2.KYC_STATUS_UNVERIFIED
    await c.open(bob)
    assert (await c.deposit(alice, 1_000)).balance_after.amount_minor == 1_000
    await c.deposit(bob, 1_000)
    reply = await c.stake(
        round_id, (f"{b}1", alice, 100), (f"{b}2", bob, 1_500), (f"{b}3", bob, 300)
    )
    assert [(r.status, r.reason) for r in reply.results] == [
        (wallet_pb2.STAKE_STATUS_ACCEPTED, ""),
        (wallet_pb2.STAKE_STATUS_REJECTED, "INSUFFICIENT_FUNDS"),
        (wallet_pb2.STAKE_STATUS_ACCEPTED, ""),
    ]
    assert reply.results[0].balance_after.amount_minor == 900
    balance = await c.wallet.GetBalance(ws.GetBalanceRequest(player_id=bob, currency="EUR"))
    assert (balance.balance.amount_minor, balance.in_play.amount_minor) == (700, 300)
    settled = await c.settle(round_id, (f"{b}1", alice, 3_600), (f"{b}3", bob, 0))
    assert (settled.settled_bet_count, settled.total_stake.amount_minor) == (2, 400)
    assert settled.house_result.amount_minor == 400 - 3_600
    assert await c.balance(alice) == 4_500 and await c.balance(bob) == 700
    statement = await c.wallet.GetStatement(ws.GetStatementRequest(player_id=alice, currency="EUR"))
    kinds = [(e.kind, e.amount.amount_minor, e.round_id, e.bet_id) for e in statement.entries]
    assert kinds == [
        (wallet_pb2.ENTRY_KIND_PAYOUT, 3_600, round_id, f"{b}1"),
        (wallet_pb2.ENTRY_KIND_STAKE, -100, round_id, f"{b}1"),
        (wallet_pb2.ENTRY_KIND_DEPOSIT, 1_000, "", ""),
    ]
    assert [e.balance_after.amount_minor for e in statement.entries] == [4_500, 900, 1_000]
    (await snapshot(wallet.database_url)).assert_conserved()


async def test_withdrawals_wait_for_kyc(wallet: RunningWallet) -> None:
    c = wallet.client
    carol = ids("carol")
    await c.open(carol)
    await c.deposit(carol, 500)
    refused = await failure(c.withdraw(carol, 100))
    assert (refused.code, refused.reason) == (FAILED, "KYC_REQUIRED")
    await c.verify(carol)
    assert (await c.withdraw(carol, 400)).balance_after.amount_minor == 100
    poor = await failure(c.withdraw(carol, 101))
    assert (poor.code, poor.reason) == (FAILED, "INSUFFICIENT_FUNDS")
    assert await c.balance(carol) == 100


async def test_a_voided_round_refunds_every_stake_and_cannot_then_settle(
    wallet: RunningWallet,
) -> None:
    c = wallet.client
    b = ids("bet")
    dave, round_id = ids("dave"), ids("round")
    await c.open(dave)
    await c.deposit(dave, 1_000)
    await c.stake(round_id, (f"{b}1", dave, 100), (f"{b}2", dave, 250))
    refunded = await c.refund(round_id)
    assert (refunded.refunded_bet_count, refunded.total_refunded.amount_minor) == (2, 350)
    assert await c.balance(dave) == 1_000
    late = await failure(c.settle(round_id, (f"{b}1", dave, 0), (f"{b}2", dave, 0)))
    assert (late.code, late.reason) == (FAILED, "ROUND_ALREADY_REFUNDED")
    again = await failure(c.refund(round_id))
    assert again.reason == "ROUND_ALREADY_REFUNDED"
    settled_round = ids("round")
    await c.stake(settled_round, (f"{b}3", dave, 10))
    await c.settle(settled_round, (f"{b}3", dave, 0))
    assert (await failure(c.refund(settled_round))).reason == "ROUND_ALREADY_SETTLED"
    assert (await failure(c.stake(settled_round, (f"{b}4", dave, 1)))).reason == (
        "ROUND_ALREADY_SETTLED"
    )
    (await snapshot(wallet.database_url)).assert_conserved()


async def test_a_repeat_returns_the_first_answer_byte_for_byte(wallet: RunningWallet) -> None:
    c = wallet.client
    erin, round_id = ids("erin"), ids("round")
    await c.open(erin)
    deposit = ws.DepositRequest(idempotency_key=key(), player_id=erin, amount=eur(700))
    first = await c.wallet.Deposit(deposit)
    await asyncio.sleep(0.01)
    second = await c.wallet.Deposit(deposit)
    assert first.SerializeToString() == second.SerializeToString()
    assert await c.balance(erin) == 700
    stake = ws.PlaceStakesRequest(
        idempotency_key=key(),
        table_id="t1",
        round_id=round_id,
        fencing_token=1,
        stakes=[wallet_pb2.Stake(bet_id=ids("bet"), player_id=erin, amount=eur(200))],
    )
    replies = await asyncio.gather(*(c.wallet.PlaceStakes(stake) for _ in range(5)))
    assert len({r.SerializeToString() for r in replies}) == 1
    assert await c.balance(erin) == 500
    # A refusal is an answer too: it stays the answer even when the balance would allow it.
    withdraw = ws.WithdrawRequest(idempotency_key=key(), player_id=erin, amount=eur(600))
    first_refusal = await failure(c.wallet.Withdraw(withdraw))
    await c.verify(erin)
    await c.deposit(erin, 1_000)
    assert await failure(c.wallet.Withdraw(withdraw)) == first_refusal
    assert await c.balance(erin) == 1_500


async def test_a_key_reused_with_another_payload_is_refused(wallet: RunningWallet) -> None:
    c = wallet.client
    frank = ids("frank")
    await c.open(frank)
    used = key()
    await c.deposit(frank, 100, idem=used)
    before = await snapshot(wallet.database_url)
    reused = await failure(c.deposit(frank, 101, idem=used))
    assert reused.code == grpc.StatusCode.ALREADY_EXISTS
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"
    assert reused.metadata == {"idempotency_key": used}
    assert await c.balance(frank) == 100
    assert await snapshot(wallet.database_url) == before


async def test_a_bet_is_debited_once_whatever_key_carries_it(wallet: RunningWallet) -> None:
    c = wallet.client
    gina, round_id, bet = ids("gina"), ids("round"), ids("bet")
    await c.open(gina)
    await c.deposit(gina, 1_000)
    first = await c.stake(round_id, (bet, gina, 300))
    second = await c.stake(round_id, (bet, gina, 300))
    assert accepted(first) == accepted(second) == [bet]
    assert second.results[0].balance_after == first.results[0].balance_after
    other = await c.stake(round_id, (bet, gina, 301))
    assert reasons(other) == ["IDEMPOTENCY_KEY_REUSED"]
    assert await c.balance(gina) == 700


async def test_accounts_open_once(wallet: RunningWallet) -> None:
    c = wallet.client
    hugo = ids("hugo")
    request = ws.OpenAccountRequest(idempotency_key=key(), player_id=hugo, currency="EUR")
    first = await c.wallet.OpenAccount(request)
    assert (await c.wallet.OpenAccount(request)) == first
    twice = await failure(c.open(hugo))
    assert (twice.code, twice.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ACCOUNT_ALREADY_EXISTS")
    usd = await c.open(hugo, "USD")
    assert usd.account.account_id != first.account.account_id


async def test_an_older_fencing_token_is_refused(wallet: RunningWallet) -> None:
    c = wallet.client
    b = ids("bet")
    ivy, table, round_id = ids("ivy"), ids("table"), ids("round")
    await c.open(ivy)
    await c.deposit(ivy, 100)
    await c.stake(round_id, (f"{b}1", ivy, 10), table=table, token=7)
    stale = await failure(c.refund(round_id, table=table, token=6))
    assert (stale.code, stale.reason) == (FAILED, "STALE_FENCING_TOKEN")
    await c.refund(round_id, table=table, token=8)
    assert await c.balance(ivy) == 100


async def test_the_statement_pages_back_in_time(wallet: RunningWallet) -> None:
    c = wallet.client
    jack = ids("jack")
    await c.open(jack)
    for amount in range(1, 8):
        await c.deposit(jack, amount)
    seen: list[int] = []
    token = ""
    while True:
        page = await c.wallet.GetStatement(
            ws.GetStatementRequest(player_id=jack, currency="EUR", page_size=3, page_token=token)
        )
        seen += [e.amount.amount_minor for e in page.entries]
        token = page.next_page_token
        if not token:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    bad = await failure(
        c.wallet.GetStatement(
            ws.GetStatementRequest(player_id=jack, currency="EUR", page_token="not-a-token")
        )
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad.violations] == ["page_token"]


async def test_deposit_limits_lower_at_once_and_raise_after_cooling(
    wallet: RunningWallet,
) -> None:
    c = wallet.client
    kate = ids("kate")
    await c.open(kate)
    deposit, day = limits_pb2.MONEY_LIMIT_KIND_DEPOSIT, limits_pb2.LIMIT_PERIOD_DAY
    set_ = await c.set_limit(kate, deposit, day, 1_000)
    assert set_.changes[0].status == limits_pb2.LIMIT_CHANGE_STATUS_EFFECTIVE
    await c.deposit(kate, 600)
    over = await failure(c.deposit(kate, 500))
    assert (over.code, over.reason, over.metadata["limit_period"]) == (
        FAILED,
        "LIMIT_EXCEEDED_DEPOSIT",
        "day",
    )
    raised = await c.set_limit(kate, deposit, day, 2_000)
    assert raised.changes[0].status == limits_pb2.LIMIT_CHANGE_STATUS_PENDING
    state = (await c.admin.GetLimits(ws.GetLimitsRequest(player_id=kate, currency="EUR"))).state
    assert state.limits[0].limit.amount.amount_minor == 1_000
    assert state.limits[0].used.amount_minor == 600
    assert state.limits[0].pending.limit.amount.amount_minor == 2_000
    assert (await failure(c.deposit(kate, 500))).reason == "LIMIT_EXCEEDED_DEPOSIT"
    await asyncio.sleep(1.2)  # the cooling period of this test process
    await c.deposit(kate, 500)
    lowered = await c.set_limit(kate, deposit, day, 100)
    assert lowered.changes[0].status == limits_pb2.LIMIT_CHANGE_STATUS_EFFECTIVE
    assert (await failure(c.deposit(kate, 1))).reason == "LIMIT_EXCEEDED_DEPOSIT"


async def test_loss_limits_reject_stakes_one_by_one(wallet: RunningWallet) -> None:
    c = wallet.client
    b = ids("bet")
    liam, round_id = ids("liam"), ids("round")
    await c.open(liam)
    await c.deposit(liam, 10_000)
    await c.set_limit(liam, limits_pb2.MONEY_LIMIT_KIND_LOSS, limits_pb2.LIMIT_PERIOD_WEEK, 500)
    reply = await c.stake(
        round_id, (f"{b}1", liam, 400), (f"{b}2", liam, 200), (f"{b}3", liam, 100)
    )
    assert reasons(reply) == ["", "LIMIT_EXCEEDED_LOSS", ""]
    assert await c.balance(liam) == 9_500


async def test_a_blocked_player_can_withdraw_but_not_play(wallet: RunningWallet) -> None:
    c = wallet.client
    b = ids("bet")
    mia, round_id = ids("mia"), ids("round")
    await c.open(mia)
    await c.deposit(mia, 300)
    await c.verify(mia)
    now = await c.admin.Reconcile(ws.ReconcileRequest(currency="EUR"))
    ends = now.generated_at.seconds + 3 * 86_400
    block = ws.SetSelfExclusionRequest(
        idempotency_key=key(), player_id=mia, kind=wallet_pb2.SELF_EXCLUSION_KIND_COOL_OFF
    )
    block.ends_at.seconds = ends
    set_ = await c.admin.SetSelfExclusion(block)
    assert set_.self_exclusion.ends_at.seconds == ends
    assert (await failure(c.deposit(mia, 1))).reason == "COOLING_OFF"
    assert reasons(await c.stake(round_id, (f"{b}1", mia, 1))) == ["COOLING_OFF"]
    shorter = ws.SetSelfExclusionRequest(
        idempotency_key=key(), player_id=mia, kind=wallet_pb2.SELF_EXCLUSION_KIND_COOL_OFF
    )
    shorter.ends_at.seconds = ends - 86_400
    kept = await c.admin.SetSelfExclusion(shorter)
    assert kept.self_exclusion.ends_at.seconds == ends
    await c.withdraw(mia, 300)


async def test_reconcile_reports_the_day(wallet: RunningWallet) -> None:
    c = wallet.client
    b = ids("bet")
    nina, round_id = ids("nina"), ids("round")
    before = await c.reconcile()
    await c.open(nina)
    await c.deposit(nina, 1_000)
    await c.stake(round_id, (f"{b}1", nina, 100), (f"{b}2", nina, 50))
    await c.settle(round_id, (f"{b}1", nina, 200), (f"{b}2", nina, 0))
    after = await c.reconcile()
    assert after.ok and after.currencies[0].conservation_ok
    was, now = before.currencies[0], after.currencies[0]
    assert now.total_deposits.amount_minor - was.total_deposits.amount_minor == 1_000

    def total(report: ws.ReconcileResponse, field: str) -> int:
        days = report.currencies[0].days
        return sum(
            getattr(d, field)
            if field.endswith("count") or field.startswith("rounds")
            else getattr(d, field).amount_minor
            for d in days
        )

    assert total(after, "stake_count") - total(before, "stake_count") == 2
    assert total(after, "payouts") - total(before, "payouts") == 200
    assert total(after, "rounds_settled") - total(before, "rounds_settled") == 1
    assert not now.closed_rounds_with_escrow and not now.negative_balance_accounts
