"""A table for the change-counter increments Redis did not take.

Revision ID: 0014_unannounced_changes
Revises: 0013_email_nfkc_after_casefold

A change that commits while Redis refuses its increments (down, out of
memory, read-only) writes a row here in the same transaction; every process
looks at least once a second and makes the increments once Redis takes them
(``idp/changes.py``). The table is empty but for such faults.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_unannounced_changes"
down_revision = "0013_email_nfkc_after_casefold"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``unannounced_changes``."""
    op.create_table(
        "unannounced_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("counter_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unannounced_changes")),
    )


def downgrade():
    """Drop ``unannounced_changes``."""
    op.drop_table("unannounced_changes")
