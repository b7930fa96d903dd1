"""The batch evaluator, pure: each request decided on its own, refusals change nothing."""

from __future__ import annotations

import itertools
from zoneinfo import ZoneInfo

import pytest

from casino_kit.errors import AlreadyExists, DomainError, FailedPrecondition, InvalidArgument
from wallet_svc import ledger
from wallet_svc.commands import (
    Deposit,
    KycStatus,
    LimitRequest,
    OpenAccount,
    PayoutItem,
    PlaceStakes,
    RefundRound,
    SetBlock,
    SetKyc,
    SetLimits,
    SettleRound,
    StakeItem,
    StakesPlaced,
    Withdraw,
)
from wallet_svc.engine import Engine
from wallet_svc.limits import US_PER_DAY, BlockKind, LimitKind, Period, window
from wallet_svc.state import BetState, RoundState, State

NOW = 1_795_000_000_000_000
ZONE = ZoneInfo("UTC")


def engine(state: State | None = None) -> Engine:
    ids = itertools.count(1_000)
    return Engine(
        state or State(),
        now_us=NOW,
        window=window(NOW, ZONE),
        cooling_us=3_600_000_000,
        new_id=lambda: next(ids),
    )


def funded(*players: tuple[str, int]) -> Engine:
    run = engine()
    for player, amount in players:
        run.run(OpenAccount(player, "EUR"))
        if amount:
            run.run(Deposit(player, "EUR", amount))
    return run


def stakes(round_id: str, *items: tuple[str, str, int], token: int = 1) -> PlaceStakes:
    return PlaceStakes("t1", round_id, token, "EUR", tuple(StakeItem(b, p, a) for b, p, a in items))


def balance(run: Engine, player: str) -> int:
    row = run.state.account_by_key(ledger.player_key(player, "EUR"))
    assert row is not None
    return row.account.balance


def refused(run: Engine, command: object) -> DomainError:
    before = run.state.version
    with pytest.raises(DomainError) as error:
        run.run(command)  # type: ignore[arg-type]
    assert run.state.version == before, "a refused request changed the state"
    return error.value


def test_each_stake_is_accepted_or_rejected_on_its_own() -> None:
    run = funded(("alice", 1_000), ("bob", 100))
    result = run.run(
        stakes(
            "r1", ("b1", "alice", 600), ("b2", "bob", 150), ("b3", "alice", 500), ("b4", "carol", 1)
        )
    )
    assert isinstance(result, StakesPlaced)
    assert [(o.accepted, o.reason, o.balance_after) for o in result.outcomes] == [
        (True, "", 400),
        (False, "INSUFFICIENT_FUNDS", 100),
        (False, "INSUFFICIENT_FUNDS", 400),
        (False, "ACCOUNT_NOT_FOUND", None),
    ]
    round_ = run.state.rounds["r1"]
    assert (round_.held, round_.stake_count, round_.state) == (600, 1, RoundState.OPEN)


def test_a_bet_id_is_debited_once_whatever_carries_it() -> None:
    run = funded(("alice", 1_000))
    run.run(stakes("r1", ("b1", "alice", 100)))
    again = run.run(stakes("r1", ("b1", "alice", 100), ("b1", "alice", 100)))
    assert isinstance(again, StakesPlaced)
    assert [(o.accepted, o.balance_after) for o in again.outcomes] == [(True, 900), (True, 900)]
    other = run.run(stakes("r1", ("b1", "alice", 200)))
    assert isinstance(other, StakesPlaced)
    assert other.outcomes[0].reason == "IDEMPOTENCY_KEY_REUSED"
    same_call = run.run(stakes("r1", ("b9", "alice", 10), ("b9", "alice", 10), ("b9", "alice", 11)))
    assert isinstance(same_call, StakesPlaced)
    assert [o.reason for o in same_call.outcomes] == ["", "", "IDEMPOTENCY_KEY_REUSED"]
    assert balance(run, "alice") == 890


def test_settlement_pays_listed_bets_and_closes_the_round() -> None:
    run = funded(("alice", 1_000), ("bob", 1_000))
    run.run(stakes("r1", ("b1", "alice", 100), ("b2", "bob", 200)))
    settle = SettleRound(
        "t1", "r1", 1, "EUR", (PayoutItem("b1", "alice", 3_600), PayoutItem("b2", "bob", 0))
    )
    run.run(settle)
    assert balance(run, "alice") == 4_500 and balance(run, "bob") == 800
    assert run.state.rounds["r1"].state is RoundState.SETTLED
    assert run.state.rounds["r1"].held == 0
    assert run.state.bets["b1"].state is BetState.SETTLED
    house = sum(
        row.account.balance
        for row in run.state.accounts.values()
        if row.account.kind is ledger.AccountKind.HOUSE
    )
    assert house == -3_300
    assert sum(row.account.balance for row in run.state.accounts.values()) == 0


@pytest.mark.parametrize(
    "payouts",
    [
        (),
        (("b1", "alice", 0),),
        (("b1", "alice", 0), ("b2", "bob", 0), ("b2", "bob", 0)),
        (("b1", "bob", 0), ("b2", "bob", 0)),
        (("b1", "alice", 0), ("b2", "bob", 0), ("b3", "bob", 0)),
    ],
)
def test_a_settlement_must_list_every_accepted_stake_exactly_once(
    payouts: tuple[tuple[str, str, int], ...],
) -> None:
    run = funded(("alice", 1_000), ("bob", 1_000))
    run.run(stakes("r1", ("b1", "alice", 100), ("b2", "bob", 200)))
    error = refused(run, SettleRound("t1", "r1", 1, "EUR", tuple(PayoutItem(*p) for p in payouts)))
    assert isinstance(error, InvalidArgument) and error.reason == "SETTLEMENT_MISMATCH"


def test_settle_after_refund_and_refund_after_settle_are_refused() -> None:
    run = funded(("alice", 1_000))
    run.run(stakes("r1", ("b1", "alice", 100)))
    run.run(RefundRound("t1", "r1", 1, "studio lost the wheel"))
    assert balance(run, "alice") == 1_000
    error = refused(run, SettleRound("t1", "r1", 1, "EUR", (PayoutItem("b1", "alice", 200),)))
    assert error.reason == "ROUND_ALREADY_REFUNDED"
    assert refused(run, RefundRound("t1", "r1", 1, "again")).reason == "ROUND_ALREADY_REFUNDED"
    assert refused(run, stakes("r1", ("b2", "alice", 1))).reason == "ROUND_ALREADY_REFUNDED"
    run.run(stakes("r2", ("b3", "alice", 100)))
    run.run(SettleRound("t1", "r2", 1, "EUR", (PayoutItem("b3", "alice", 0),)))
    assert refused(run, RefundRound("t1", "r2", 1, "late")).reason == "ROUND_ALREADY_SETTLED"


def test_a_round_without_stakes_closes_empty() -> None:
    run = funded(("alice", 1_000))
    run.run(RefundRound("t1", "r-empty", 1, "void"))
    assert run.state.rounds["r-empty"].state is RoundState.REFUNDED
    assert refused(run, stakes("r-empty", ("b1", "alice", 1))).reason == "ROUND_ALREADY_REFUNDED"


def test_an_older_fencing_token_cannot_move_money() -> None:
    run = funded(("alice", 1_000))
    run.run(stakes("r1", ("b1", "alice", 100), token=5))
    assert refused(run, stakes("r1", ("b2", "alice", 1), token=4)).reason == "STALE_FENCING_TOKEN"
    error = refused(run, RefundRound("t1", "r1", 4, "deposed owner"))
    assert error.reason == "STALE_FENCING_TOKEN"
    run.run(RefundRound("t1", "r1", 6, "new owner"))
    assert run.state.tables["t1"].fencing_token == 6


def test_a_round_keeps_its_currency_and_table() -> None:
    run = funded(("alice", 1_000))
    run.run(OpenAccount("alice", "USD"))
    run.run(stakes("r1", ("b1", "alice", 100)))
    usd = PlaceStakes("t1", "r1", 1, "USD", (StakeItem("b2", "alice", 1),))
    assert refused(run, usd).reason == "CURRENCY_MISMATCH"
    other_table = PlaceStakes("t2", "r1", 1, "EUR", (StakeItem("b3", "alice", 1),))
    assert isinstance(refused(run, other_table), InvalidArgument)


def test_withdrawals_wait_for_kyc() -> None:
    run = funded(("alice", 1_000))
    assert refused(run, Withdraw("alice", "EUR", 10)).reason == "KYC_REQUIRED"
    run.run(SetKyc("alice", KycStatus.VERIFIED, "op-1", "passport checked"))
    run.run(Withdraw("alice", "EUR", 1_000))
    assert balance(run, "alice") == 0
    assert refused(run, Withdraw("alice", "EUR", 1)).reason == "INSUFFICIENT_FUNDS"
    assert run.state.audits[-1].action == "kyc"


def test_accounts_are_opened_once() -> None:
    run = funded(("alice", 0))
    assert isinstance(refused(run, OpenAccount("alice", "EUR")), AlreadyExists)
    assert refused(run, Deposit("nobody", "EUR", 1)).reason == "ACCOUNT_NOT_FOUND"
    assert refused(run, SetKyc("nobody", KycStatus.VERIFIED, "op", "x")).reason == (
        "ACCOUNT_NOT_FOUND"
    )


def test_deposit_limits_are_checked_with_the_deposit() -> None:
    run = funded(("alice", 0))
    run.run(SetLimits("alice", "EUR", (LimitRequest(LimitKind.DEPOSIT, Period.DAY, 500),), "", ""))
    run.run(Deposit("alice", "EUR", 300))
    error = refused(run, Deposit("alice", "EUR", 201))
    assert isinstance(error, FailedPrecondition) and error.reason == "LIMIT_EXCEEDED_DEPOSIT"
    assert error.metadata["limit_period"] == "day"
    run.run(Deposit("alice", "EUR", 200))


def test_loss_limits_reject_single_stakes() -> None:
    run = funded(("alice", 10_000))
    run.run(SetLimits("alice", "EUR", (LimitRequest(LimitKind.LOSS, Period.WEEK, 500),), "", ""))
    result = run.run(stakes("r1", ("b1", "alice", 300), ("b2", "alice", 300), ("b3", "alice", 200)))
    assert isinstance(result, StakesPlaced)
    assert [o.reason for o in result.outcomes] == ["", "LIMIT_EXCEEDED_LOSS", ""]
    run.run(
        SettleRound(
            "t1", "r1", 1, "EUR", (PayoutItem("b1", "alice", 600), PayoutItem("b3", "alice", 0))
        )
    )
    result = run.run(stakes("r2", ("b4", "alice", 300)))  # net loss now 300 - 600 + 200 = -100
    assert isinstance(result, StakesPlaced) and result.outcomes[0].accepted


def test_raising_a_limit_waits_for_the_cooling_period() -> None:
    run = funded(("alice", 10_000))
    day = (LimitRequest(LimitKind.LOSS, Period.DAY, 100),)
    run.run(SetLimits("alice", "EUR", day, "", ""))
    raised = run.run(
        SetLimits("alice", "EUR", (LimitRequest(LimitKind.LOSS, Period.DAY, 5_000),), "", "")
    )
    assert raised.changes[0][1].status.value == "pending"  # type: ignore[union-attr]
    result = run.run(stakes("r1", ("b1", "alice", 200)))
    assert isinstance(result, StakesPlaced) and result.outcomes[0].reason == "LIMIT_EXCEEDED_LOSS"


def test_blocked_players_cannot_stake_or_deposit_but_can_withdraw() -> None:
    run = funded(("alice", 1_000))
    run.run(SetKyc("alice", KycStatus.VERIFIED, "op", "ok"))
    run.run(SetBlock("alice", BlockKind.COOL_OFF, NOW + 2 * US_PER_DAY, "", "break"))
    assert refused(run, Deposit("alice", "EUR", 1)).reason == "COOLING_OFF"
    result = run.run(stakes("r1", ("b1", "alice", 1)))
    assert isinstance(result, StakesPlaced) and result.outcomes[0].reason == "COOLING_OFF"
    run.run(Withdraw("alice", "EUR", 1_000))
    short = SetBlock("alice", BlockKind.COOL_OFF, NOW + 3_600_000_000, "", "")
    assert isinstance(refused(run, short), InvalidArgument)
