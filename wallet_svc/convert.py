"""Domain values to Protobuf messages (and enum mappings both ways), for server.py.

Responses that are stored for idempotency are rendered once, with deterministic
serialization, and the stored bytes are what every answer to that key sends.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from casino.common.v1 import common_pb2, limits_pb2
from casino.wallet.v1 import wallet_pb2, wallet_service_pb2
from wallet_svc import reports
from wallet_svc.commands import (
    AccountOpened,
    BlockSet,
    KycSet,
    KycStatus,
    LimitsSet,
    Moved,
    Result,
    RoundRefunded,
    RoundSettled,
    StakesPlaced,
)
from wallet_svc.ledger import EntryKind
from wallet_svc.limits import Block, BlockKind, ChangeStatus, Limit, LimitKind, Period

KYC_TO_PROTO = {
    KycStatus.UNVERIFIED: wallet_pb2.KYC_STATUS_UNVERIFIED,
    KycStatus.PENDING: wallet_pb2.KYC_STATUS_PENDING,
    KycStatus.VERIFIED: wallet_pb2.KYC_STATUS_VERIFIED,
    KycStatus.REJECTED: wallet_pb2.KYC_STATUS_REJECTED,
}
KYC_FROM_PROTO = {number: status for status, number in KYC_TO_PROTO.items()}

ENTRY_TO_PROTO = {
    EntryKind.DEPOSIT.value: wallet_pb2.ENTRY_KIND_DEPOSIT,
    EntryKind.WITHDRAWAL.value: wallet_pb2.ENTRY_KIND_WITHDRAWAL,
    EntryKind.STAKE.value: wallet_pb2.ENTRY_KIND_STAKE,
    EntryKind.PAYOUT.value: wallet_pb2.ENTRY_KIND_PAYOUT,
    EntryKind.REFUND.value: wallet_pb2.ENTRY_KIND_REFUND,
}

BLOCK_TO_PROTO = {
    BlockKind.SELF_EXCLUSION: wallet_pb2.SELF_EXCLUSION_KIND_SELF_EXCLUSION,
    BlockKind.COOL_OFF: wallet_pb2.SELF_EXCLUSION_KIND_COOL_OFF,
}
BLOCK_FROM_PROTO = {number: kind for kind, number in BLOCK_TO_PROTO.items()}

LIMIT_KIND_TO_PROTO = {
    LimitKind.DEPOSIT: limits_pb2.MONEY_LIMIT_KIND_DEPOSIT,
    LimitKind.LOSS: limits_pb2.MONEY_LIMIT_KIND_LOSS,
}
LIMIT_KIND_FROM_PROTO = {number: kind for kind, number in LIMIT_KIND_TO_PROTO.items()}

PERIOD_TO_PROTO = {
    Period.DAY: limits_pb2.LIMIT_PERIOD_DAY,
    Period.WEEK: limits_pb2.LIMIT_PERIOD_WEEK,
    Period.MONTH: limits_pb2.LIMIT_PERIOD_MONTH,
}
PERIOD_FROM_PROTO = {number: period for period, number in PERIOD_TO_PROTO.items()}

CHANGE_TO_PROTO = {
    ChangeStatus.EFFECTIVE: limits_pb2.LIMIT_CHANGE_STATUS_EFFECTIVE,
    ChangeStatus.PENDING: limits_pb2.LIMIT_CHANGE_STATUS_PENDING,
    ChangeStatus.UNCHANGED: limits_pb2.LIMIT_CHANGE_STATUS_UNCHANGED,
}


def timestamp(us: int) -> Timestamp:
    seconds, micros = divmod(us, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


def micros(stamp: Timestamp) -> int:
    return stamp.seconds * 1_000_000 + stamp.nanos // 1000


def money(amount: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=currency)


def _bytes(message: object) -> bytes:
    return message.SerializeToString(deterministic=True)  # type: ignore[attr-defined, no-any-return]


def account_opened(result: Result) -> bytes:
    assert isinstance(result, AccountOpened)
    account = wallet_pb2.Account(
        account_id=str(result.account_id),
        player_id=result.player_id,
        currency=result.currency,
        kyc_status=KYC_TO_PROTO[result.kyc],
        created_at=timestamp(result.created_us),
    )
    return _bytes(wallet_service_pb2.OpenAccountResponse(account=account))


def deposited(result: Result) -> bytes:
    assert isinstance(result, Moved)
    return _bytes(
        wallet_service_pb2.DepositResponse(
            entry_id=str(result.entry_id),
            balance_after=money(result.balance_after, result.currency),
            created_at=timestamp(result.created_us),
        )
    )


def withdrawn(result: Result) -> bytes:
    assert isinstance(result, Moved)
    return _bytes(
        wallet_service_pb2.WithdrawResponse(
            entry_id=str(result.entry_id),
            balance_after=money(result.balance_after, result.currency),
            created_at=timestamp(result.created_us),
        )
    )


def stakes_placed(result: Result) -> bytes:
    assert isinstance(result, StakesPlaced)
    accepted, rejected = wallet_pb2.STAKE_STATUS_ACCEPTED, wallet_pb2.STAKE_STATUS_REJECTED
    response = wallet_service_pb2.PlaceStakesResponse()
    for outcome in result.outcomes:
        item = response.results.add(
            bet_id=outcome.bet_id,
            status=accepted if outcome.accepted else rejected,
            reason=outcome.reason,
        )
        if outcome.balance_after is not None:
            item.balance_after.amount_minor = outcome.balance_after
            item.balance_after.currency = result.currency
    return _bytes(response)


def round_settled(result: Result) -> bytes:
    assert isinstance(result, RoundSettled)
    return _bytes(
        wallet_service_pb2.SettleRoundResponse(
            round_id=result.round_id,
            settled_bet_count=result.bet_count,
            total_stake=money(result.total_stake, result.currency),
            total_payout=money(result.total_payout, result.currency),
            house_result=money(result.total_stake - result.total_payout, result.currency),
            settled_at=timestamp(result.at_us),
        )
    )


def round_refunded(result: Result) -> bytes:
    assert isinstance(result, RoundRefunded)
    response = wallet_service_pb2.RefundRoundResponse(
        round_id=result.round_id,
        refunded_bet_count=result.bet_count,
        refunded_at=timestamp(result.at_us),
    )
    if result.bet_count:
        response.total_refunded.CopyFrom(money(result.total, result.currency))
    return _bytes(response)


def kyc_set(result: Result) -> bytes:
    assert isinstance(result, KycSet)
    return _bytes(
        wallet_service_pb2.SetKycStatusResponse(
            player_id=result.player_id,
            status=KYC_TO_PROTO[result.status],
            updated_at=timestamp(result.at_us),
        )
    )


def money_limit(
    kind: LimitKind, period: Period, amount: int | None, currency: str
) -> limits_pb2.MoneyLimit:
    limit = limits_pb2.MoneyLimit(kind=LIMIT_KIND_TO_PROTO[kind], period=PERIOD_TO_PROTO[period])
    if amount is not None:
        limit.amount.CopyFrom(money(amount, currency))
    return limit


def limits_set(result: Result) -> bytes:
    assert isinstance(result, LimitsSet)
    response = wallet_service_pb2.SetLimitsResponse()
    for request, change in result.changes:
        response.changes.add(
            limit=money_limit(request.kind, request.period, request.amount, result.currency),
            status=CHANGE_TO_PROTO[change.status],
            effective_at=timestamp(change.effective_at_us),
        )
    return _bytes(response)


def self_exclusion(block: Block) -> wallet_pb2.SelfExclusion:
    message = wallet_pb2.SelfExclusion(
        kind=BLOCK_TO_PROTO[block.kind], starts_at=timestamp(block.starts_us)
    )
    if block.ends_us is not None:
        message.ends_at.CopyFrom(timestamp(block.ends_us))
    return message


def block_set(result: Result) -> bytes:
    assert isinstance(result, BlockSet)
    return _bytes(
        wallet_service_pb2.SetSelfExclusionResponse(self_exclusion=self_exclusion(result.block))
    )


def limits_state(
    views: list[reports.LimitView], block: Block | None, currency: str
) -> wallet_pb2.MoneyLimitsState:
    state = wallet_pb2.MoneyLimitsState()
    for view in views:
        usage = state.limits.add(
            limit=money_limit(view.limit.kind, view.limit.period, view.limit.amount, currency),
            used=money(view.used, currency),
            period_ends_at=timestamp(view.period_ends_us),
        )
        pending: Limit | None = view.pending
        if pending is not None:
            usage.pending.CopyFrom(
                limits_pb2.MoneyLimitChange(
                    limit=money_limit(
                        pending.kind, pending.period, pending.pending_amount, currency
                    ),
                    status=limits_pb2.LIMIT_CHANGE_STATUS_PENDING,
                    effective_at=timestamp(pending.pending_at_us),
                )
            )
    if block is not None:
        state.self_exclusion.CopyFrom(self_exclusion(block))
    return state


def statement_entry(entry: reports.Entry, currency: str) -> wallet_pb2.StatementEntry:
    return wallet_pb2.StatementEntry(
        entry_id=str(entry.id),
        kind=ENTRY_TO_PROTO[entry.kind],
        amount=money(entry.amount, currency),
        balance_after=money(entry.balance_after, currency),
        round_id=entry.round_id,
        bet_id=entry.bet_id,
        table_id=entry.table_id,
        external_ref=entry.external_ref,
        created_at=timestamp(entry.created_us),
    )


def reconciliation(report: reports.CurrencyReport) -> wallet_pb2.CurrencyReconciliation:
    code = report.currency
    message = wallet_pb2.CurrencyReconciliation(
        currency=code,
        ok=report.ok,
        conservation_ok=report.conservation_ok,
        total_deposits=money(report.total_deposits, code),
        total_withdrawals=money(report.total_withdrawals, code),
        player_balances=money(report.balances["player"], code),
        escrow_balance=money(report.balances["escrow"], code),
        house_balance=money(report.balances["house"], code),
        open_round_count=report.open_round_count,
        closed_rounds_with_escrow=report.closed_rounds_with_escrow,
        negative_balance_accounts=report.negative_balance_accounts,
    )
    for day in sorted(report.days):
        totals = report.days[day]
        message.days.add(
            day_start=timestamp(totals.day_start_us),
            deposit_count=totals.counts["deposit"],
            deposits=money(totals.sums["deposit"], code),
            withdrawal_count=totals.counts["withdrawal"],
            withdrawals=money(totals.sums["withdrawal"], code),
            stake_count=totals.counts["stake"],
            stakes=money(totals.sums["stake"], code),
            payout_count=totals.counts["payout"],
            payouts=money(totals.sums["payout"], code),
            refund_count=totals.counts["refund"],
            refunds=money(totals.sums["refund"], code),
            rounds_settled=totals.rounds_settled,
            rounds_refunded=totals.rounds_refunded,
        )
    return message
