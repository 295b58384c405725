"""The first schema: persons, assessments, their images, the audit table.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
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
        "persons",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("baseline_p_pain", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("person_code", sa.String(40), sa.ForeignKey("persons.code", ondelete="CASCADE"), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("saved_by", sa.String(200), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("experiment_version", sa.String(200), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("rating_scale", sa.String(40), nullable=True),
        sa.Column("rating_score", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("image_kept", sa.Boolean(), nullable=False))
    op.create_index("ix_assessments_person_code", "assessments", ["person_code"])
    op.create_table(
        "assessment_images",
        sa.Column("assessment_id", sa.Integer(), sa.ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("media_type", sa.String(80), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("person_code", sa.String(40), nullable=True),
        sa.Column("assessment_id", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True))
    op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_at", "audit_events")
    op.drop_table("audit_events")
    op.drop_table("assessment_images")
    op.drop_index("ix_assessments_person_code", "assessments")
    op.drop_table("assessments")
    op.drop_table("persons")
