"""A signing key an operator can withdraw at once.

Revision ID: 0019_revoked_signing_keys
Revises: 0018_one_first_key_per_algorithm

``signing_keys.revoked_at`` marks a key withdrawn by ``idp keys revoke``
(its private half is suspected leaked): it no longer signs, is no longer
published, and no token it signed verifies. ``first_of`` (0018) keeps its
meaning, one key per algorithm made because the algorithm had none: a
revoked key still counts as one, and the key that replaces a revoked active
key is made by the revocation in its own transaction, not as a first key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_revoked_signing_keys"
down_revision = "0018_one_first_key_per_algorithm"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``signing_keys.revoked_at``."""
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))


def downgrade():
    """Drop ``signing_keys.revoked_at``."""
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
