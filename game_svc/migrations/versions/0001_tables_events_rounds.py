"""Tables, the per-table event log, rounds, idempotent admin answers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "game_tables",
        sa.Column("table_id", sa.String(64), primary_key=True),
        sa.Column("config", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "game_table_events",
        sa.Column(
            "table_id",
            sa.String(64),
            sa.ForeignKey("game_tables.table_id"),
            primary_key=True,
        ),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("round_id", sa.String(64), nullable=False),
        sa.Column("server_time_us", sa.BigInteger, nullable=False),
        sa.Column("event", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "game_rounds",
        sa.Column("round_id", sa.String(64), primary_key=True),
        sa.Column("table_id", sa.String(64), sa.ForeignKey("game_tables.table_id"), nullable=False),
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("opened_at_us", sa.BigInteger, nullable=False),
        sa.Column("closes_at_us", sa.BigInteger, nullable=False),
        sa.Column("closed_at_us", sa.BigInteger, nullable=True),
    )
    op.create_index("game_rounds_by_table", "game_rounds", ["table_id", "opened_at_us"])
    op.create_table(
        "game_idempotency",
        sa.Column("operation", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(128), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("game_idempotency")
    op.drop_index("game_rounds_by_table", "game_rounds")
    op.drop_table("game_rounds")
    op.drop_table("game_table_events")
    op.drop_table("game_tables")
