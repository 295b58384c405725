"""Sign-in throttling: failed sign-ins counted per name (engine/records/sign_in.py), and the account name a
sign-in event of the audit is about.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("name_digest", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forget_at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_sign_in_failures_forget_at", "sign_in_failures", ["forget_at"])
    with op.batch_alter_table("audit_events") as table:
        table.add_column(sa.Column("account", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as table:
        table.drop_column("account")
    op.drop_index("ix_sign_in_failures_forget_at", "sign_in_failures")
    op.drop_table("sign_in_failures")
