"""people: customer profile (phone, tags, notes, merged_into_id), CSAT surveys, agent presence

Revision ID: people_01
Revises: 0001_initial
Create Date: 2026-12-04 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.db

revision = "people_01"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_customers_merged_into_id_customers"), "customers", ["merged_into_id"], ["id"]
        )

    op.create_table(
        "csat_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_csat_surveys_conversation_id_conversations")
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identities.id"], name=op.f("fk_csat_surveys_identity_id_channel_identities")
        ),
        sa.ForeignKeyConstraint(
            ["reply_message_id"], ["messages.id"], name=op.f("fk_csat_surveys_reply_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat_surveys")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_csat_surveys_conversation_id")),
    )
    with op.batch_alter_table("csat_surveys", schema=None) as batch_op:
        batch_op.create_index("ix_csat_surveys_status_due", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_csat_surveys_identity_id"), ["identity_id"], unique=False)

    op.create_table(
        "agent_presence",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cap", sa.Integer(), nullable=True),
        sa.Column("last_assigned_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_presence")),
    )


def downgrade() -> None:
    op.drop_table("agent_presence")
    with op.batch_alter_table("csat_surveys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_csat_surveys_identity_id"))
        batch_op.drop_index("ix_csat_surveys_status_due")
    op.drop_table("csat_surveys")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_customers_merged_into_id_customers"), type_="foreignkey")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("notes")
        batch_op.drop_column("tags")
        batch_op.drop_column("phone")
