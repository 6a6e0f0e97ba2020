"""canned_replies and their uses: saved replies for agents (issue 16)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_canned_replies_owner_user_id", "canned_replies", ["owner_user_id"])
    op.create_table(
        "canned_reply_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("canned_reply_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["canned_reply_id"], ["canned_replies.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_canned_reply_uses_canned_reply_id", "canned_reply_uses", ["canned_reply_id"]
    )
    op.create_index("ix_canned_reply_uses_time", "canned_reply_uses", ["used_at"])


def downgrade() -> None:
    op.drop_index("ix_canned_reply_uses_time", table_name="canned_reply_uses")
    op.drop_index("ix_canned_reply_uses_canned_reply_id", table_name="canned_reply_uses")
    op.drop_table("canned_reply_uses")
    op.drop_index("ix_canned_replies_owner_user_id", table_name="canned_replies")
    op.drop_table("canned_replies")
