"""The sign-in counts and the audit's addresses become keyed hashes (HMAC-SHA-256 under a secret outside the
database, engine/records/sign_in.py) instead of plain SHA-256 values, which a dump alone lets anyone reverse for an
IPv4 address by hashing all 2^32. The plain values cannot be turned into keyed ones (that needs the addresses), so
they are removed: the audit's ``address`` is emptied on the rows that had one (those rows, from revision 0003,
stay), and both counts tables are emptied (their rows last at most half an hour; a pause in progress ends). No
column changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE audit_events SET address = NULL WHERE address IS NOT NULL"))
    op.execute(sa.text("DELETE FROM sign_in_address_failures"))
    op.execute(sa.text("DELETE FROM sign_in_failures"))


def downgrade() -> None:
    pass  # the keyed hashes stay: 0003's code would read them as plain SHA-256 values that match no address
