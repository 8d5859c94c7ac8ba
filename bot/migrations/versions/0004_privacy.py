"""privacy: messages.sealed_text holds personal data PII_POLICY keeps, encrypted

Revision ID: privacy_01
Revises: audit_01
Create Date: 2026-12-06 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "privacy_01"
down_revision = "audit_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("sealed_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("sealed_text")
