"""At most one open invitation per address and partner, enforced by the database.

Revision ID: 0008_open_invitations
Revises: 0007_login_sessions

Two owners inviting the same address at the same moment each passed the
check in Python; a partial UNIQUE index now decides. Older duplicates (all but
the newest open invitation of an address) are revoked first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_open_invitations"
down_revision = "0007_login_sessions"
branch_labels = None
depends_on = None

OPEN = "accepted_at IS NULL AND revoked_at IS NULL"


def upgrade():
    """Revoke duplicate open invitations, then add the partial UNIQUE index."""
    op.execute(
        sa.text(
            "UPDATE invitations SET revoked_at = CURRENT_TIMESTAMP "
            "WHERE accepted_at IS NULL AND revoked_at IS NULL AND EXISTS ("
            " SELECT 1 FROM invitations AS newer"
            " WHERE newer.organization_id = invitations.organization_id"
            " AND newer.email_normalized = invitations.email_normalized"
            " AND newer.accepted_at IS NULL AND newer.revoked_at IS NULL"
            " AND (newer.created_at > invitations.created_at"
            "  OR (newer.created_at = invitations.created_at AND newer.id > invitations.id)))"
        )
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(
            "uq_invitations_open_per_address",
            ["organization_id", "email_normalized"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )


def downgrade():
    """Drop the index (revoked duplicates stay revoked)."""
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invitations_open_per_address",
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )
