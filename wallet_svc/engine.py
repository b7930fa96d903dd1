"""Evaluates one batch's operations, one after the other, on the rows the store locked.

Each operation is decided on its own: it either raises a DomainError before changing anything,
or changes the in-memory state and returns its result. So a refused request never disturbs its
neighbours in the batch, and the store writes the surviving changes in one transaction. A
refused operation that did change something is a bug; ``run`` turns it into PartialChange so
the committer abandons the batch and retries its requests one by one.

Pure code: the clock (``now_us``) and the id source are passed in.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping

from casino_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from wallet_svc import ledger
from wallet_svc.commands import (
    AccountOpened,
    BlockSet,
    Command,
    Deposit,
    KycSet,
    KycStatus,
    LimitsSet,
    Moved,
    OpenAccount,
    PlaceStakes,
    RefundRound,
    Result,
    RoundRefunded,
    RoundSettled,
    SetBlock,
    SetKyc,
    SetLimits,
    SettleRound,
    StakeItem,
    StakeOutcome,
    StakesPlaced,
    Withdraw,
)
from wallet_svc.ledger import Account, AccountKind, BetShare, Transfer
from wallet_svc.limits import (
    Block,
    LimitKind,
    Usage,
    Window,
    block_problem,
    breach,
    change,
    extend,
)
from wallet_svc.refusals import (
    account_not_found,
    block_error,
    currency_mismatch,
    match_payouts,
    settlement_mismatch,
)
from wallet_svc.state import (
    AccountRow,
    AuditRow,
    BetRow,
    BetState,
    PlayerRow,
    PostingRow,
    RoundRow,
    RoundState,
    State,
    TableRow,
)


class PartialChange(RuntimeError):
    """An operation was refused after it had changed the batch's state (a bug)."""


class StaleRead(RuntimeError):
    """Rows the batch read without a lock disagree with rows it locked: another writer
    committed while this batch waited for its locks. Running the batch again fixes it."""


class _Accounts(Mapping[int, Account]):
    """The ledger's view of the state's accounts."""

    def __init__(self, state: State) -> None:
        self._rows = state.accounts

    def __getitem__(self, key: int) -> Account:
        return self._rows[key].account

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class Engine:
    """Runs commands against one batch's ``state`` at one instant ``now_us``."""

    def __init__(
        self,
        state: State,
        *,
        now_us: int,
        window: Window,
        cooling_us: int,
        new_id: Callable[[], int],
    ) -> None:
        self.state = state
        self.now = now_us
        self.window = window
        self.cooling_us = cooling_us
        self.new_id = new_id
        self._accounts = _Accounts(state)
        self._handlers: dict[type, Callable[[object], Result]] = {
            OpenAccount: self._open_account,  # type: ignore[dict-item]
            Deposit: self._deposit,  # type: ignore[dict-item]
            Withdraw: self._withdraw,  # type: ignore[dict-item]
            PlaceStakes: self._place_stakes,  # type: ignore[dict-item]
            SettleRound: self._settle_round,  # type: ignore[dict-item]
            RefundRound: self._refund_round,  # type: ignore[dict-item]
            SetKyc: self._set_kyc,  # type: ignore[dict-item]
            SetLimits: self._set_limits,  # type: ignore[dict-item]
            SetBlock: self._set_block,  # type: ignore[dict-item]
        }

    def run(self, command: Command) -> Result:
        """Apply ``command``; a DomainError means nothing changed."""
        before = self.state.version
        try:
            return self._handlers[type(command)](command)
        except DomainError as error:
            if self.state.version != before:
                raise PartialChange(f"{type(command).__name__} refused after a change") from error
            raise

    # --- shared rules -------------------------------------------------------------------------
    def _player_account(self, player_id: str, currency: str) -> AccountRow:
        row = self.state.account_by_key(ledger.player_key(player_id, currency))
        if row is None:
            raise account_not_found(player_id, currency)
        return row

    def _player(self, player_id: str) -> PlayerRow:
        player = self.state.players.get(player_id)
        if player is None:
            raise NotFound(
                "ACCOUNT_NOT_FOUND",
                f"player {player_id!r} has no account",
                metadata={"player_id": player_id},
            )
        return player

    def _active_block(self, player_id: str) -> Block | None:
        player = self.state.players.get(player_id)
        if player is None or player.block is None or not player.block.active(self.now):
            return None
        return player.block

    def _system_account(self, key: str, kind: AccountKind, currency: str, owner: str) -> Account:
        row = self.state.account_by_key(key)
        if row is None:
            row = AccountRow(
                Account(self.new_id(), kind, currency, owner), key, None, Usage(), self.now
            )
            self.state.add_account(row)
        return row.account

    def _post(self, transfer: Transfer) -> list[tuple[int, int]]:
        """Apply a transfer and record its postings; return (posting id, balance after) by leg."""
        after = ledger.post(transfer, self._accounts)
        transfer_id = self.new_id()
        ids = []
        for leg, balance in zip(transfer.legs, after, strict=True):
            posting_id = self.new_id()
            ids.append((posting_id, balance))
            self.state.add_posting(
                PostingRow(
                    posting_id,
                    transfer_id,
                    leg.account_id,
                    transfer.kind.value,
                    leg.amount,
                    balance,
                    transfer.round_id or None,
                    leg.bet_id or None,
                    transfer.table_id or None,
                    transfer.external_ref or None,
                    self.now,
                )
            )
            self.state.touch("account", leg.account_id)
        return ids

    def _check_fence(self, table_id: str, token: int) -> None:
        table = self.state.tables.get(table_id)
        if table is not None and token < table.fencing_token:
            raise FailedPrecondition(
                "STALE_FENCING_TOKEN",
                f"fencing token {token} is older than {table.fencing_token}",
                metadata={"table_id": table_id},
            )

    def _advance_fence(self, table_id: str, token: int) -> None:
        table = self.state.tables.get(table_id)
        if table is None:
            self.state.tables[table_id] = TableRow(table_id, token)
            self.state.add("table", table_id)
        elif token > table.fencing_token:
            table.fencing_token = token
            self.state.touch("table", table_id)

    def _open_round(self, round_id: str, table_id: str) -> RoundRow | None:
        """The round if it may still change; raise if it is closed or on another table."""
        round_ = self.state.rounds.get(round_id)
        if round_ is None:
            return None
        if round_.table_id != table_id:
            raise InvalidArgument(
                [FieldViolation("table_id", f"round {round_id!r} is on another table")]
            )
        if round_.state is RoundState.SETTLED:
            raise FailedPrecondition(
                "ROUND_ALREADY_SETTLED", "the round is settled", metadata={"round_id": round_id}
            )
        if round_.state is RoundState.REFUNDED:
            raise FailedPrecondition(
                "ROUND_ALREADY_REFUNDED", "the round is refunded", metadata={"round_id": round_id}
            )
        return round_

    def _closed_empty_round(self, command: SettleRound | RefundRound, state: RoundState) -> None:
        reason = command.reason if isinstance(command, RefundRound) else None
        self.state.rounds[command.round_id] = RoundRow(
            command.round_id,
            command.table_id,
            None,
            state,
            None,
            0,
            0,
            0,
            self.now,
            self.now,
            reason,
        )
        self.state.add("round", command.round_id)
        self.state.round_bets[command.round_id] = []

    # --- accounts and cash --------------------------------------------------------------------
    def _open_account(self, command: OpenAccount) -> AccountOpened:
        key = ledger.player_key(command.player_id, command.currency)
        if self.state.account_by_key(key) is not None:
            raise AlreadyExists(
                "ACCOUNT_ALREADY_EXISTS",
                f"player {command.player_id!r} already has a {command.currency} account",
                metadata={"player_id": command.player_id, "currency": command.currency},
            )
        player = self.state.players.get(command.player_id)
        if player is None:
            player = PlayerRow(command.player_id, KycStatus.UNVERIFIED, self.now, None, self.now)
            self.state.players[command.player_id] = player
            self.state.add("player", command.player_id)
        usage = Usage()
        usage.roll(self.window)
        account = Account(self.new_id(), AccountKind.PLAYER, command.currency, command.player_id)
        self.state.add_account(AccountRow(account, key, command.player_id, usage, self.now))
        self.state.limits[account.id] = {}
        return AccountOpened(account.id, command.player_id, command.currency, player.kyc, self.now)

    def _cashier(self, command: Deposit | Withdraw) -> Account:
        key = ledger.cashier_key(command.currency, command.player_id)
        return self._system_account(
            key, AccountKind.CASHIER, command.currency, key.rsplit(":", 1)[1]
        )

    def _deposit(self, command: Deposit) -> Moved:
        row = self._player_account(command.player_id, command.currency)
        block = self._active_block(command.player_id)
        if block is not None:
            raise block_error(block)
        limits = self.state.limits.get(row.account.id, {}).values()
        period = breach(row.usage, limits, LimitKind.DEPOSIT, command.amount, self.now)
        if period is not None:
            raise FailedPrecondition(
                "LIMIT_EXCEEDED_DEPOSIT",
                f"the deposit would exceed the {period} deposit limit",
                metadata={"limit_period": period.value, "player_id": command.player_id},
            )
        if row.account.balance + command.amount > ledger.MAX_BALANCE:
            raise FailedPrecondition("BALANCE_OVERFLOW", "the balance would be too large")
        cashier = self._cashier(command)
        transfer = ledger.deposit(row.account, cashier, command.amount, command.external_ref)
        entry_id, balance = self._post(transfer)[0]
        row.usage.add_deposit(command.amount)
        return Moved(entry_id, command.currency, balance, self.now)

    def _withdraw(self, command: Withdraw) -> Moved:
        row = self._player_account(command.player_id, command.currency)
        if self._player(command.player_id).kyc is not KycStatus.VERIFIED:
            raise FailedPrecondition(
                "KYC_REQUIRED",
                "withdrawals wait until the player's identity is verified",
                metadata={"player_id": command.player_id},
            )
        if row.account.balance < command.amount:
            raise ledger.insufficient_funds(row.account, command.amount)
        cashier = self._cashier(command)
        transfer = ledger.withdrawal(row.account, cashier, command.amount, command.external_ref)
        entry_id, balance = self._post(transfer)[0]
        return Moved(entry_id, command.currency, balance, self.now)

    # --- rounds -------------------------------------------------------------------------------
    def _stake_refusal(
        self, stake: StakeItem, row: AccountRow | None, taken: Mapping[int, int]
    ) -> str:
        """Why ``stake`` cannot be taken (empty if it can), given earlier acceptances."""
        if row is None:
            return "ACCOUNT_NOT_FOUND"
        block = self._active_block(stake.player_id)
        if block is not None:
            return block.reason
        already = taken.get(row.account.id, 0)
        if row.account.balance - already < stake.amount:
            return "INSUFFICIENT_FUNDS"
        limits = self.state.limits.get(row.account.id)
        if limits and breach(
            row.usage, limits.values(), LimitKind.LOSS, already + stake.amount, self.now
        ):
            return "LIMIT_EXCEEDED_LOSS"
        return ""

    def _place_stakes(self, command: PlaceStakes) -> StakesPlaced:
        self._check_fence(command.table_id, command.fencing_token)
        round_ = self._open_round(command.round_id, command.table_id)
        if round_ is not None and round_.currency != command.currency:
            raise currency_mismatch("stakes", round_.currency or "")
        self._advance_fence(command.table_id, command.fencing_token)
        taken: dict[int, int] = defaultdict(int)
        shares: list[BetShare] = []
        # One entry per stake: bet id, refusal reason, account row, index into shares
        # (-1: accepted by an earlier call, -2: refused).
        outcomes: list[tuple[str, str, AccountRow | None, int]] = []
        first_in_call: dict[str, int] = {}
        for index, stake in enumerate(command.stakes):
            row = self.state.account_by_key(ledger.player_key(stake.player_id, command.currency))
            known = self.state.bets.get(stake.bet_id)
            earlier = first_in_call.get(stake.bet_id)
            if known is not None:
                same = (known.player_id, known.amount, known.currency, known.round_id) == (
                    stake.player_id,
                    stake.amount,
                    command.currency,
                    command.round_id,
                )
                reason = "" if same else "IDEMPOTENCY_KEY_REUSED"
                outcomes.append((stake.bet_id, reason, row, -1 if same else -2))
            elif earlier is not None:
                twin = command.stakes[earlier]
                if (twin.player_id, twin.amount) == (stake.player_id, stake.amount):
                    outcomes.append(outcomes[earlier])
                else:
                    outcomes.append((stake.bet_id, "IDEMPOTENCY_KEY_REUSED", row, -2))
            else:
                first_in_call[stake.bet_id] = index
                reason = self._stake_refusal(stake, row, taken)
                share = -2
                if not reason and row is not None:
                    share = len(shares)
                    shares.append(BetShare(row.account.id, stake.bet_id, stake.amount))
                    taken[row.account.id] += stake.amount
                outcomes.append((stake.bet_id, reason, row, share))
        balances = self._take_stakes(command, round_, shares) if shares else []
        results = []
        for bet_id, reason, row, share in outcomes:
            if share >= 0:
                balance: int | None = balances[share]
            elif share == -1:
                balance = self.state.bets[bet_id].balance_after
            else:
                balance = None if row is None else row.account.balance
            results.append(StakeOutcome(bet_id, not reason, reason, balance))
        return StakesPlaced(command.currency, tuple(results))

    def _take_stakes(
        self, command: PlaceStakes, round_: RoundRow | None, shares: list[BetShare]
    ) -> list[int]:
        """Move the accepted stakes into escrow; return each stake's balance after it."""
        if round_ is None:
            escrow = self._system_account(
                ledger.escrow_key(command.table_id, command.currency),
                AccountKind.ESCROW,
                command.currency,
                command.table_id,
            )
            round_ = RoundRow(
                command.round_id,
                command.table_id,
                command.currency,
                RoundState.OPEN,
                escrow.id,
                0,
                0,
                0,
                self.now,
            )
            self.state.rounds[command.round_id] = round_
            self.state.add("round", command.round_id)
        else:
            self.state.touch("round", command.round_id)
        assert round_.escrow_account_id is not None
        escrow = self.state.accounts[round_.escrow_account_id].account
        transfer = ledger.stakes(escrow, shares, command.round_id, command.table_id)
        balances = [balance for _, balance in self._post(transfer)[: len(shares)]]
        total = sum(s.stake for s in shares)
        round_.stake_count += len(shares)
        round_.total_stake += total
        round_.held += total
        round_bets = self.state.round_bets.get(command.round_id)
        for share, balance in zip(shares, balances, strict=True):
            account = self.state.accounts[share.account_id]
            bet = BetRow(
                share.bet_id,
                command.round_id,
                share.account_id,
                account.player_id or "",
                command.currency,
                share.stake,
                balance,
                BetState.OPEN,
                self.now,
            )
            self.state.bets[bet.bet_id] = bet
            self.state.add("bet", bet.bet_id)
            if round_bets is not None:
                round_bets.append(bet)
            account.usage.add_loss(share.stake)
            account.in_play += share.stake
        return balances

    def _round_to_close(self, command: SettleRound | RefundRound) -> RoundRow | None:
        self._check_fence(command.table_id, command.fencing_token)
        return self._open_round(command.round_id, command.table_id)

    def _open_bets(self, round_: RoundRow) -> list[BetRow]:
        """The round's open bets; they must add up to what the round holds in escrow."""
        known = self.state.round_bets.get(round_.round_id)
        if known is None:  # the store loads them for settlements; pure callers keep all bets
            known = [b for b in self.state.bets.values() if b.round_id == round_.round_id]
        bets = [b for b in known if b.state is BetState.OPEN]
        if sum(b.amount for b in bets) != round_.held:
            raise StaleRead(f"round {round_.round_id} holds {round_.held}, its bets differ")
        return bets

    def _settle_round(self, command: SettleRound) -> RoundSettled:
        round_ = self._round_to_close(command)
        if round_ is None:
            if command.payouts:
                raise settlement_mismatch(command.round_id, "the round has no accepted stake")
            self._advance_fence(command.table_id, command.fencing_token)
            self._closed_empty_round(command, RoundState.SETTLED)
            return RoundSettled(command.round_id, command.currency, 0, 0, 0, self.now)
        currency = round_.currency or ""
        if command.payouts and command.currency != currency:
            raise currency_mismatch("payouts", currency)
        bets = {b.bet_id: b for b in self._open_bets(round_)}
        match_payouts(command, bets)
        self._advance_fence(command.table_id, command.fencing_token)
        shares = [
            BetShare(bets[p.bet_id].account_id, p.bet_id, bets[p.bet_id].amount, p.payout)
            for p in command.payouts
        ]
        escrow = self.state.accounts[round_.escrow_account_id or 0].account
        house = self._system_account(
            ledger.house_key(currency, command.round_id),
            AccountKind.HOUSE,
            currency,
            ledger.house_key(currency, command.round_id).rsplit(":", 1)[1],
        )
        transfer = ledger.settlement(escrow, house, shares, command.round_id, command.table_id)
        if transfer is not None:
            self._post(transfer)
        for share in shares:
            self._close_bet(bets[share.bet_id], BetState.SETTLED, share.payout)
        self._close_round(round_, RoundState.SETTLED, None)
        total_stake = sum(s.stake for s in shares)
        total_payout = sum(s.payout for s in shares)
        return RoundSettled(
            command.round_id, currency, len(shares), total_stake, total_payout, self.now
        )

    def _refund_round(self, command: RefundRound) -> RoundRefunded:
        round_ = self._round_to_close(command)
        self._advance_fence(command.table_id, command.fencing_token)
        if round_ is None:
            self._closed_empty_round(command, RoundState.REFUNDED)
            return RoundRefunded(command.round_id, "", 0, 0, self.now)
        bets = self._open_bets(round_)
        shares = [BetShare(b.account_id, b.bet_id, b.amount, b.amount) for b in bets]
        escrow = self.state.accounts[round_.escrow_account_id or 0].account
        transfer = ledger.refund(escrow, shares, command.round_id, command.table_id)
        if transfer is not None:
            self._post(transfer)
        for bet in bets:
            self._close_bet(bet, BetState.REFUNDED, bet.amount)
        self._close_round(round_, RoundState.REFUNDED, command.reason)
        total = sum(b.amount for b in bets)
        return RoundRefunded(command.round_id, round_.currency or "", len(bets), total, self.now)

    def _close_bet(self, bet: BetRow, state: BetState, paid: int) -> None:
        bet.state = state
        bet.payout = paid
        bet.closed_us = self.now
        self.state.touch("bet", bet.bet_id)
        account = self.state.accounts[bet.account_id]
        account.in_play -= bet.amount
        if paid:
            account.usage.add_loss(-paid)
        self.state.touch("account", bet.account_id)

    def _close_round(self, round_: RoundRow, state: RoundState, reason: str | None) -> None:
        round_.state = state
        round_.held = 0
        round_.closed_us = self.now
        round_.close_reason = reason
        self.state.touch("round", round_.round_id)

    # --- responsible gaming and KYC -----------------------------------------------------------
    def _audit(
        self,
        player_id: str,
        account_id: int | None,
        action: str,
        who: str,
        why: str,
        detail: object,
    ) -> None:
        self.state.add_audit(
            AuditRow(
                self.new_id(),
                player_id,
                account_id,
                action,
                who,
                why,
                json.dumps(detail, sort_keys=True),
                self.now,
            )
        )

    def _set_kyc(self, command: SetKyc) -> KycSet:
        player = self._player(command.player_id)
        before = player.kyc
        player.kyc = command.status
        player.kyc_updated_us = self.now
        self.state.touch("player", command.player_id)
        detail = {"from": before.value, "to": command.status.value}
        self._audit(command.player_id, None, "kyc", command.operator_id, command.reason, detail)
        return KycSet(command.player_id, command.status, self.now)

    def _set_limits(self, command: SetLimits) -> LimitsSet:
        row = self._player_account(command.player_id, command.currency)
        account_id = row.account.id
        stored = self.state.limits.setdefault(account_id, {})
        changes = []
        for request in command.limits:
            slot = (request.kind, request.period)
            done = change(
                stored.get(slot),
                request.kind,
                request.period,
                request.amount,
                self.now,
                self.cooling_us,
            )
            if slot in stored:
                self.state.touch("limit", (account_id, *slot))
            else:
                self.state.add("limit", (account_id, *slot))
            stored[slot] = done.limit
            changes.append((request, done))
            detail = {
                "kind": request.kind.value,
                "period": request.period.value,
                "requested": request.amount,
                "status": done.status.value,
                "effective_at_us": done.effective_at_us,
            }
            who = command.operator_id or "player"
            self._audit(command.player_id, account_id, "limit", who, command.reason, detail)
        return LimitsSet(command.currency, tuple(changes))

    def _set_block(self, command: SetBlock) -> BlockSet:
        player = self._player(command.player_id)
        problem = block_problem(command.kind, command.ends_us, self.now)
        if problem is not None:
            raise InvalidArgument([FieldViolation("ends_at", problem)])
        block = extend(player.block, command.kind, command.ends_us, self.now)
        if block != player.block:
            player.block = block
            self.state.touch("player", command.player_id)
            detail = {"kind": block.kind.value, "ends_us": block.ends_us}
            who = command.operator_id or "player"
            self._audit(command.player_id, None, "block", who, command.reason, detail)
        return BlockSet(block)
