"""The ledger's tables (SQLAlchemy Core), the same on PostgreSQL and SQLite.

Money is BIGINT minor units, times are BIGINT microseconds since the Unix epoch (exact, and
equal on both engines). The database guards the invariants the code keeps, so a bug fails a
transaction instead of corrupting the ledger: no player or escrow balance below zero, no
closed round holding money, no posting of zero, one row per idempotency key and per bet.
The two append-heavy tables (bets, postings) carry no foreign keys: a referential check per
row would cost more than the insert, the engine only writes ids of rows it holds locked, and
reconciliation finds any posting whose account does not add up.
The migration ``versions/0001_initial.py`` creates exactly this schema (a test compares them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

metadata = MetaData()

players = Table(
    "players",
    metadata,
    Column("player_id", Text, primary_key=True),
    Column("kyc_status", Text, nullable=False),
    Column("kyc_updated_us", BigInteger, nullable=False),
    Column("block_kind", Text),
    Column("block_starts_us", BigInteger),
    Column("block_ends_us", BigInteger),
    Column("created_us", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("key", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("player_id", Text, ForeignKey("players.player_id")),
    Column("balance", BigInteger, nullable=False),
    Column("in_play", BigInteger, nullable=False),
    # Responsible-gaming usage of the current periods, changed with the balance.
    Column("day_start_us", BigInteger, nullable=False),
    Column("week_start_us", BigInteger, nullable=False),
    Column("month_start_us", BigInteger, nullable=False),
    Column("day_deposits", BigInteger, nullable=False),
    Column("week_deposits", BigInteger, nullable=False),
    Column("month_deposits", BigInteger, nullable=False),
    Column("day_loss", BigInteger, nullable=False),
    Column("week_loss", BigInteger, nullable=False),
    Column("month_loss", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("kind NOT IN ('player', 'escrow') OR balance >= 0", name="ck_accounts_covered"),
    CheckConstraint("in_play >= 0", name="ck_accounts_in_play"),
    postgresql_with={"fillfactor": 50},
)

game_tables = Table(
    "game_tables",
    metadata,
    Column("table_id", Text, primary_key=True),
    Column("fencing_token", BigInteger, nullable=False),
)

rounds = Table(
    "rounds",
    metadata,
    Column("round_id", Text, primary_key=True),
    Column("table_id", Text, nullable=False),
    Column("currency", Text),
    Column("state", Text, nullable=False),
    Column("escrow_account_id", BigInteger, ForeignKey("accounts.id")),
    Column("stake_count", Integer, nullable=False),
    Column("total_stake", BigInteger, nullable=False),
    Column("held", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("closed_us", BigInteger),
    Column("close_reason", Text),
    CheckConstraint("held >= 0 AND (state = 'open' OR held = 0)", name="ck_rounds_held"),
)
Index("ix_rounds_state", rounds.c.state)

bets = Table(
    "bets",
    metadata,
    Column("bet_id", Text, primary_key=True),
    Column("round_id", Text, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("player_id", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("payout", BigInteger),
    Column("created_us", BigInteger, nullable=False),
    Column("closed_us", BigInteger),
    CheckConstraint("amount > 0", name="ck_bets_amount"),
)
Index("ix_bets_round", bets.c.round_id)

postings = Table(
    "postings",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("transfer_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("round_id", Text),
    Column("bet_id", Text),
    Column("table_id", Text),
    Column("external_ref", Text),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="ck_postings_amount"),
)
Index("ix_postings_account", postings.c.account_id, postings.c.id)
Index("ix_postings_round", postings.c.round_id)

money_limits = Table(
    "money_limits",
    metadata,
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("amount", BigInteger),
    Column("pending", Boolean, nullable=False),
    Column("pending_amount", BigInteger),
    Column("pending_at_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "kind", "period"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("player_id", Text, nullable=False),
    Column("account_id", BigInteger),
    Column("action", Text, nullable=False),
    Column("operator_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)
Index("ix_audit_player", audit.c.player_id, audit.c.id)

idempotency = Table(
    "idempotency",
    metadata,
    Column("method", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("answer", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("key", "method"),
)
