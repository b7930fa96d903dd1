"""The round loop: fencing tokens on tables, round records, bets, applied studio events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("game_tables") as batch:
        batch.add_column(sa.Column("fence", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("game_rounds") as batch:
        batch.add_column(sa.Column("record", sa.LargeBinary, nullable=True))
    op.create_index("game_rounds_unfinished", "game_rounds", ["table_id", "phase"])
    op.create_index("game_table_events_by_round", "game_table_events", ["round_id"])
    op.create_table(
        "game_bets",
        sa.Column("bet_id", sa.String(128), primary_key=True),
        sa.Column("round_id", sa.String(64), sa.ForeignKey("game_rounds.round_id"), nullable=False),
        sa.Column("player_id", sa.String(128), nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("stake", sa.BigInteger, nullable=False),
        sa.Column("record", sa.LargeBinary, nullable=False),
    )
    op.create_index("game_bets_by_round", "game_bets", ["round_id", "received"])
    op.create_index("game_bets_by_player", "game_bets", ["player_id", "round_id"])
    op.create_table(
        "game_studio_events",
        sa.Column(
            "table_id", sa.String(64), sa.ForeignKey("game_tables.table_id"), primary_key=True
        ),
        sa.Column("studio_sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("answer", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("game_studio_events")
    op.drop_index("game_bets_by_player", "game_bets")
    op.drop_index("game_bets_by_round", "game_bets")
    op.drop_table("game_bets")
    op.drop_index("game_table_events_by_round", "game_table_events")
    op.drop_index("game_rounds_unfinished", "game_rounds")
    with op.batch_alter_table("game_rounds") as batch:
        batch.drop_column("record")
    with op.batch_alter_table("game_tables") as batch:
        batch.drop_column("fence")
