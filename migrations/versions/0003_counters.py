"""counters: public ticket numbers taken before the ticket's transaction

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    # No rows: a counter is created on first use, after the numbers already taken
    # (queries.take_number), so ticket numbers continue after the tickets made so far.


def downgrade() -> None:
    op.drop_table("counters")
