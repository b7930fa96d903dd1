"""Posting rules, pure: every transfer balances, and money only moves where the rules say."""

from __future__ import annotations

import random

import pytest

from casino_kit.errors import FailedPrecondition
from wallet_svc import ledger
from wallet_svc.ledger import Account, AccountKind, BetShare, EntryKind, Leg, Transfer


def accounts() -> dict[int, Account]:
    return {
        1: Account(1, AccountKind.PLAYER, "EUR", "p1", 1_000),
        2: Account(2, AccountKind.PLAYER, "EUR", "p2", 500),
        10: Account(10, AccountKind.ESCROW, "EUR", "t1"),
        20: Account(20, AccountKind.HOUSE, "EUR", "3"),
        30: Account(30, AccountKind.CASHIER, "EUR", "7", -1_500),
    }


def total(book: dict[int, Account]) -> int:
    return sum(a.balance for a in book.values())


def test_a_transfer_must_balance() -> None:
    with pytest.raises(ledger.UnbalancedTransfer):
        Transfer(EntryKind.DEPOSIT, "EUR", (Leg(1, 100), Leg(30, -99)))
    with pytest.raises(ledger.UnbalancedTransfer):
        Transfer(EntryKind.DEPOSIT, "EUR", (Leg(1, 100),))
    with pytest.raises(ledger.UnbalancedTransfer):
        Transfer(EntryKind.DEPOSIT, "EUR", (Leg(1, 0), Leg(30, 0)))


def test_deposit_and_withdrawal_move_money_between_cashier_and_player() -> None:
    book = accounts()
    after = ledger.post(ledger.deposit(book[1], book[30], 250, "psp-1"), book)
    assert after == [1_250, -1_750]
    after = ledger.post(ledger.withdrawal(book[1], book[30], 1_250), book)
    assert after == [0, -500]
    assert total(book) == 0


def test_a_player_cannot_go_below_zero_and_a_refused_post_changes_nothing() -> None:
    book = accounts()
    before = {i: a.balance for i, a in book.items()}
    with pytest.raises(FailedPrecondition) as refused:
        ledger.post(ledger.withdrawal(book[2], book[30], 501), book)
    assert refused.value.reason == "INSUFFICIENT_FUNDS"
    assert {i: a.balance for i, a in book.items()} == before


def test_a_compound_stake_checks_the_running_balance_of_each_player() -> None:
    book = accounts()
    shares = [BetShare(2, "b1", 300), BetShare(2, "b2", 300)]
    with pytest.raises(FailedPrecondition):
        ledger.post(ledger.stakes(book[10], shares, "r1", "t1"), book)
    assert book[2].balance == 500 and book[10].balance == 0


def test_stakes_settlement_empties_the_round_escrow_into_players_and_house() -> None:
    book = accounts()
    shares = [BetShare(1, "b1", 100), BetShare(2, "b2", 200), BetShare(1, "b3", 50)]
    after = ledger.post(ledger.stakes(book[10], shares, "r1", "t1"), book)
    assert after == [900, 300, 850, 350]
    assert book[10].balance == 350
    # b1 wins 2:1 (pays 300), b2 loses, b3 pushes (pays its stake back).
    settled = [
        BetShare(1, "b1", 100, 300),
        BetShare(2, "b2", 200, 0),
        BetShare(1, "b3", 50, 50),
    ]
    transfer = ledger.settlement(book[10], book[20], settled, "r1", "t1")
    assert transfer is not None and transfer.kind is EntryKind.PAYOUT
    assert [leg.bet_id for leg in transfer.legs if leg.amount > 0 and leg.bet_id] == ["b1", "b3"]
    ledger.post(transfer, book)
    assert book[10].balance == 0
    assert book[20].balance == 350 - 350  # stakes 350, payouts 350: the house breaks even
    assert book[1].balance == 1_200 and book[2].balance == 300
    assert total(book) == 0


def test_the_house_pays_what_the_escrow_does_not_cover() -> None:
    book = accounts()
    ledger.post(ledger.stakes(book[10], [BetShare(1, "b1", 100)], "r1", "t1"), book)
    transfer = ledger.settlement(book[10], book[20], [BetShare(1, "b1", 100, 3_600)], "r1", "t1")
    assert transfer is not None
    ledger.post(transfer, book)
    assert book[20].balance == -3_500 and book[10].balance == 0 and book[1].balance == 4_500


def test_a_refund_returns_every_stake_in_full() -> None:
    book = accounts()
    shares = [BetShare(1, "b1", 100), BetShare(2, "b2", 200)]
    ledger.post(ledger.stakes(book[10], shares, "r1", "t1"), book)
    transfer = ledger.refund(book[10], shares, "r1", "t1")
    assert transfer is not None and transfer.kind is EntryKind.REFUND
    ledger.post(transfer, book)
    assert (book[1].balance, book[2].balance, book[10].balance) == (1_000, 500, 0)


def test_rounds_without_bets_move_nothing() -> None:
    book = accounts()
    assert ledger.settlement(book[10], book[20], [], "r1", "t1") is None
    assert ledger.refund(book[10], [], "r1", "t1") is None


def test_escrow_cannot_pay_out_money_that_was_not_staked() -> None:
    book = accounts()
    with pytest.raises(FailedPrecondition):
        transfer = ledger.refund(book[10], [BetShare(1, "b1", 100)], "r1", "t1")
        assert transfer is not None
        ledger.post(transfer, book)


def test_house_and_cashier_shards_are_stable_and_spread() -> None:
    keys = {ledger.house_key("EUR", f"round-{i}") for i in range(2_000)}
    assert len(keys) == ledger.HOUSE_SHARDS
    assert ledger.house_key("EUR", "round-1") == ledger.house_key("EUR", "round-1")
    assert ledger.cashier_key("EUR", "p1").startswith("cashier:EUR:")
    assert ledger.player_key("p1", "EUR") == ledger.account_key(AccountKind.PLAYER, "EUR", "p1")


def test_random_rounds_conserve_money() -> None:
    rng = random.Random(7)
    book = accounts()
    for round_number in range(200):
        shares: list[BetShare] = []
        for bet in range(rng.randint(0, 4)):
            player = rng.choice([1, 2])
            stake = rng.randint(1, 50)
            if book[player].balance >= stake + sum(
                s.stake for s in shares if s.account_id == player
            ):
                shares.append(BetShare(player, f"b{round_number}-{bet}", stake))
        if shares:
            ledger.post(ledger.stakes(book[10], shares, f"r{round_number}", "t1"), book)
        if rng.random() < 0.2:
            transfer = ledger.refund(book[10], shares, f"r{round_number}", "t1")
        else:
            paid = [
                BetShare(s.account_id, s.bet_id, s.stake, s.stake * rng.choice([0, 0, 2, 36]))
                for s in shares
            ]
            transfer = ledger.settlement(book[10], book[20], paid, f"r{round_number}", "t1")
        if transfer is not None:
            ledger.post(transfer, book)
        assert book[10].balance == 0
        assert total(book) == 0
        assert book[1].balance >= 0 and book[2].balance >= 0
