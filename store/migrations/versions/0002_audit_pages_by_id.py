"""The audit trail pages by id: index (practice_id, id) instead of (practice_id, at)."""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.create_index("ix_audit_practice_id", ["practice_id", "id"])
        batch_op.drop_index("ix_audit_practice_at")


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.create_index("ix_audit_practice_at", ["practice_id", "at"])
        batch_op.drop_index("ix_audit_practice_id")
