"""The support console finds practices by office number, and by name in name order."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_practices_office_number", "practices", ["office_number"])
    op.create_index("ix_practices_name_lower", "practices", [sa.text("lower(name)")])


def downgrade() -> None:
    op.drop_index("ix_practices_name_lower", table_name="practices")
    op.drop_index("ix_practices_office_number", table_name="practices")
