"""The ledger: players, accounts, tables, rounds, bets, postings, limits, audit, idempotency.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bigint(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _text(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Text(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "players",
        _text("player_id"),
        _text("kyc_status"),
        _bigint("kyc_updated_us"),
        _text("block_kind", True),
        _bigint("block_starts_us", True),
        _bigint("block_ends_us", True),
        _bigint("created_us"),
        sa.PrimaryKeyConstraint("player_id"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        _text("key"),
        _text("kind"),
        _text("currency"),
        _text("owner"),
        _text("player_id", True),
        _bigint("balance"),
        _bigint("in_play"),
        _bigint("day_start_us"),
        _bigint("week_start_us"),
        _bigint("month_start_us"),
        _bigint("day_deposits"),
        _bigint("week_deposits"),
        _bigint("month_deposits"),
        _bigint("day_loss"),
        _bigint("week_loss"),
        _bigint("month_loss"),
        _bigint("created_us"),
        sa.CheckConstraint(
            "kind NOT IN ('player', 'escrow') OR balance >= 0", name="ck_accounts_covered"
        ),
        sa.CheckConstraint("in_play >= 0", name="ck_accounts_in_play"),
        sa.ForeignKeyConstraint(["player_id"], ["players.player_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        postgresql_with={"fillfactor": 50},
    )
    op.create_table(
        "game_tables",
        _text("table_id"),
        _bigint("fencing_token"),
        sa.PrimaryKeyConstraint("table_id"),
    )
    op.create_table(
        "rounds",
        _text("round_id"),
        _text("table_id"),
        _text("currency", True),
        _text("state"),
        _bigint("escrow_account_id", True),
        sa.Column("stake_count", sa.Integer(), nullable=False),
        _bigint("total_stake"),
        _bigint("held"),
        _bigint("created_us"),
        _bigint("closed_us", True),
        _text("close_reason", True),
        sa.CheckConstraint("held >= 0 AND (state = 'open' OR held = 0)", name="ck_rounds_held"),
        sa.ForeignKeyConstraint(["escrow_account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("round_id"),
    )
    op.create_index("ix_rounds_state", "rounds", ["state"])
    op.create_table(
        "bets",
        _text("bet_id"),
        _text("round_id"),
        _bigint("account_id"),
        _text("player_id"),
        _text("currency"),
        _bigint("amount"),
        _bigint("balance_after"),
        _text("state"),
        _bigint("payout", True),
        _bigint("created_us"),
        _bigint("closed_us", True),
        sa.CheckConstraint("amount > 0", name="ck_bets_amount"),
        sa.PrimaryKeyConstraint("bet_id"),
    )
    op.create_index("ix_bets_round", "bets", ["round_id"])
    op.create_table(
        "postings",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        _bigint("transfer_id"),
        _bigint("account_id"),
        _text("kind"),
        _bigint("amount"),
        _bigint("balance_after"),
        _text("round_id", True),
        _text("bet_id", True),
        _text("table_id", True),
        _text("external_ref", True),
        _bigint("created_us"),
        sa.CheckConstraint("amount <> 0", name="ck_postings_amount"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_postings_account", "postings", ["account_id", "id"])
    op.create_index("ix_postings_round", "postings", ["round_id"])
    op.create_table(
        "money_limits",
        _bigint("account_id"),
        _text("kind"),
        _text("period"),
        _bigint("amount", True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        _bigint("pending_amount", True),
        _bigint("pending_at_us"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "kind", "period"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        _text("player_id"),
        _bigint("account_id", True),
        _text("action"),
        _text("operator_id"),
        _text("reason"),
        _text("detail"),
        _bigint("created_us"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_player", "audit", ["player_id", "id"])
    op.create_table(
        "idempotency",
        _text("method"),
        _text("key"),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("answer", sa.LargeBinary(), nullable=False),
        _bigint("created_us"),
        sa.PrimaryKeyConstraint("key", "method"),
    )


def downgrade() -> None:
    for name in (
        "idempotency",
        "audit",
        "money_limits",
        "postings",
        "bets",
        "rounds",
        "game_tables",
        "accounts",
        "players",
    ):
        op.drop_table(name)
