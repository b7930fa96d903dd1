"""The double-entry ledger: accounts, stakes, payouts, refunds, deposits and withdrawals."""
