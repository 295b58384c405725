"""Sign-in failures counted per network address too (its SHA-256, never the address; engine/records/sign_in.py),
the address a sign-in event of the audit came from (its SHA-256), and each saved assessment's answer_kind as a
column, filled in for the assessments saved before it from their answer record.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The answer record as saved (engine.answers): answer_kind is "with_reference" when the number is the answer with the
# person's calm reference. Records saved before the field existed (answer-v4 and older) have none, and their p_pain
# was always the face alone's (the calm face was only compared beside it, in `baseline`): "absolute".
_assessments = sa.table("assessments", sa.column("id", sa.Integer()), sa.column("answer", sa.JSON()),
                        sa.column("answer_kind", sa.String(40)))


def _kind(answer) -> str:
    return "with_reference" if isinstance(answer, dict) and answer.get("answer_kind") == "with_reference" else "absolute"


def upgrade() -> None:
    op.create_table(
        "sign_in_address_failures",
        sa.Column("address_digest", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forget_at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_sign_in_address_failures_forget_at", "sign_in_address_failures", ["forget_at"])
    with op.batch_alter_table("audit_events") as table:
        table.add_column(sa.Column("address", sa.String(64), nullable=True))
    with op.batch_alter_table("assessments") as table:
        table.add_column(sa.Column("answer_kind", sa.String(40), nullable=True))
    connection = op.get_bind()
    # read in Python, not with a JSON path in SQL: the same code on SQLite and PostgreSQL; one UPDATE per kind
    rows = connection.execute(sa.select(_assessments.c.id, _assessments.c.answer)).all()
    for kind in ("absolute", "with_reference"):
        ids = [row.id for row in rows if _kind(row.answer) == kind]
        for start in range(0, len(ids), 500):  # bounded IN lists
            connection.execute(_assessments.update().where(_assessments.c.id.in_(ids[start:start + 500]))
                               .values(answer_kind=kind))
    with op.batch_alter_table("assessments") as table:
        table.alter_column("answer_kind", existing_type=sa.String(40), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("assessments") as table:
        table.drop_column("answer_kind")
    with op.batch_alter_table("audit_events") as table:
        table.drop_column("address")
    op.drop_index("ix_sign_in_address_failures_forget_at", "sign_in_address_failures")
    op.drop_table("sign_in_address_failures")
