"""outbox.decision_id index: the refusal limit's count no longer scans every refusal

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The daily refusal limit counts a sender's refusals through decisions -> outbox.
    # Without this index SQLite reached them through ix_outbox_kind, reading every
    # refusal ever queued, so each refusal got slower as the outbox grew.
    op.create_index(op.f("ix_outbox_decision_id"), "outbox", ["decision_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_decision_id"), table_name="outbox")
