"""Rounds, the append-only audit log, signing keys.

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

_POSTGRES_GUARD = """
CREATE FUNCTION rng_audit_log_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'UPDATE' THEN
    RAISE EXCEPTION 'rng_audit_log is append-only';
  END IF;
  IF OLD.revealed_seed IS NOT NULL OR NEW.revealed_seed IS NULL
     OR (to_jsonb(NEW) - 'revealed_seed') IS DISTINCT FROM (to_jsonb(OLD) - 'revealed_seed') THEN
    RAISE EXCEPTION 'rng_audit_log is append-only: only revealed_seed may be set, once';
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
_POSTGRES_TRIGGERS = (
    "CREATE TRIGGER rng_audit_log_append_only BEFORE UPDATE OR DELETE ON rng_audit_log "
    "FOR EACH ROW EXECUTE FUNCTION rng_audit_log_append_only()",
    "CREATE TRIGGER rng_audit_log_no_truncate BEFORE TRUNCATE ON rng_audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION rng_audit_log_append_only()",
)
_SIGNED_COLUMNS = (
    "sequence, round_id, table_id, algorithm, commitment, client_seed, draw, outcome, "
    "created_at_s, created_at_ns, key_id, prev_record_hash, record_hash, signature"
)
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER rng_audit_log_no_delete BEFORE DELETE ON rng_audit_log "
    "BEGIN SELECT RAISE(ABORT, 'rng_audit_log is append-only'); END",
    f"CREATE TRIGGER rng_audit_log_no_update BEFORE UPDATE OF {_SIGNED_COLUMNS} "
    "ON rng_audit_log BEGIN SELECT RAISE(ABORT, 'rng_audit_log is append-only'); END",
    "CREATE TRIGGER rng_audit_log_reveal_once BEFORE UPDATE OF revealed_seed ON rng_audit_log "
    "WHEN OLD.revealed_seed IS NOT NULL OR NEW.revealed_seed IS NULL "
    "BEGIN SELECT RAISE(ABORT, 'revealed_seed is set once'); END",
)


def upgrade() -> None:
    op.create_table(
        "rng_rounds",
        sa.Column("round_id", sa.String(128), primary_key=True),
        sa.Column("table_id", sa.String(128), nullable=False),
        sa.Column("seed_id", sa.String(64), nullable=False, unique=True),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("server_seed", sa.LargeBinary, nullable=False),
        sa.Column("committed_at_s", sa.BigInteger, nullable=False),
        sa.Column("committed_at_ns", sa.Integer, nullable=False),
        sa.Column("commit_key", sa.String(128), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("draw_key", sa.String(128), unique=True),
        sa.Column("reveal_key", sa.String(128), unique=True),
        sa.CheckConstraint("state IN ('committed', 'drawn', 'revealed')", name="rng_rounds_state"),
    )
    op.create_table(
        "rng_audit_log",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("round_id", sa.String(128), nullable=False, unique=True),
        sa.Column("table_id", sa.String(128), nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("client_seed", sa.String(128), nullable=False),
        sa.Column("draw", sa.String(64), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("created_at_s", sa.BigInteger, nullable=False),
        sa.Column("created_at_ns", sa.Integer, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("prev_record_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("record_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("revealed_seed", sa.String(64)),
        sa.CheckConstraint("sequence >= 1", name="rng_audit_log_sequence_positive"),
    )
    op.create_table(
        "rng_signing_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at_s", sa.BigInteger, nullable=False),
        sa.Column("created_at_ns", sa.Integer, nullable=False),
        sa.Column("retired_at_s", sa.BigInteger),
        sa.Column("retired_at_ns", sa.Integer),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_GUARD)
        for statement in _POSTGRES_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("rng_signing_keys")
    op.drop_table("rng_audit_log")
    op.drop_table("rng_rounds")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION rng_audit_log_append_only()")
