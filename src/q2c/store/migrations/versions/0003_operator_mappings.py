"""operator value mappings: the current one per key, and every change kept

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_mappings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dimension", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("legal_entity", sa.String(length=40), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("config_external_id", sa.String(length=300), nullable=True),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_mappings")),
        sa.UniqueConstraint(
            "dimension", "value", "legal_entity", "system", name="uq_operator_mappings_key"
        ),
    )
    op.create_table(
        "operator_mapping_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dimension", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("legal_entity", sa.String(length=40), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("old_external_id", sa.String(length=300), nullable=True),
        sa.Column("new_external_id", sa.String(length=300), nullable=False),
        sa.Column("config_external_id", sa.String(length=300), nullable=True),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_mapping_history")),
    )
    with op.batch_alter_table("operator_mapping_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_operator_mapping_history_key",
            ["dimension", "value", "legal_entity", "system"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("operator_mapping_history", schema=None) as batch_op:
        batch_op.drop_index("ix_operator_mapping_history_key")
    op.drop_table("operator_mapping_history")
    op.drop_table("operator_mappings")
