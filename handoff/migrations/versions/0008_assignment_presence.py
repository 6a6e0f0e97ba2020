"""assignment (capacity, support owner, reason), agent availability, conversation viewers
(issue 16)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("capacity", sa.Integer(), nullable=False, server_default="5"))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("support_owner_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_accounts_support_owner_id_users", "users", ["support_owner_id"], ["id"]
        )
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("assignment_reason", sa.String(length=200), nullable=True))
    op.create_table(
        "agent_presence",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "handoff_viewers",
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("typing", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("handoff_id", "user_id"),
    )
    op.create_index("ix_handoff_viewers_seen", "handoff_viewers", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_handoff_viewers_seen", table_name="handoff_viewers")
    op.drop_table("handoff_viewers")
    op.drop_table("agent_presence")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("assignment_reason")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint("fk_accounts_support_owner_id_users", type_="foreignkey")
        batch.drop_column("support_owner_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("capacity")
