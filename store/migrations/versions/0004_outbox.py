"""The outbox: codeword texts, outcome events, disclosure notices and redactions kept in SQL."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _outbox_columns() -> list[sa.Column[object]]:
    """What every outbox row carries (store/models.py, OutboxRow)."""
    return [
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "outcome_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(120), nullable=False, unique=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        *_outbox_columns(),
    )
    op.create_index("ix_outcome_events_created", "outcome_events", ["created_at"])
    op.create_index("ix_outcome_events_due", "outcome_events", ["status", "due_at"])
    op.create_table(
        "redactions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_sid", sa.String(34), nullable=False, unique=True),
        sa.Column("practice_id", sa.String(64), nullable=False),
        sa.Column("to_masked", sa.String(32), nullable=True),
        *_outbox_columns(),
    )
    op.create_index("ix_redactions_due", "redactions", ["status", "due_at"])
    op.create_table(
        "codeword_texts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("practice_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("message_sid", sa.String(34), nullable=True, unique=True),
        sa.Column("delivery", sa.String(16), nullable=True),
        sa.Column("reserved_at", sa.Float(), nullable=True),
        *_outbox_columns(),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_codeword_texts_due", "codeword_texts", ["status", "due_at"])
    op.create_table(
        "disclosure_notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("audit_event_id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("disclosed_to", sa.String(20), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("by_support", sa.Boolean(), nullable=False),
        sa.Column("disclosed_at", sa.Float(), nullable=False),
        *_outbox_columns(),
        sa.ForeignKeyConstraint(["audit_event_id"], ["audit_events.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("audit_event_id", "user_id", name="uq_notice_per_admin"),
    )
    op.create_index("ix_disclosure_notices_due", "disclosure_notices", ["status", "due_at"])


def downgrade() -> None:
    for table in ("disclosure_notices", "codeword_texts", "redactions", "outcome_events"):
        op.drop_table(table)
