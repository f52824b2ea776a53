"""A rotated client secret may keep working for a grace period.

Revision ID: 0022_previous_client_secret
Revises: 0021_totp

Rotating a client secret may keep the one it replaces working until
``oauth_clients.previous_secret_expires_at``: ``previous_secret_hash`` holds
its SHA-256, as ``client_secret_hash`` holds the current one's. A client has
at most one previous secret; both columns are empty when it has none, and a
CHECK keeps them so (every check of a secret reads the expiry).
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_previous_client_secret"
down_revision = "0021_totp"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``oauth_clients.previous_secret_hash`` and ``previous_secret_expires_at``."""
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", sa.DateTime(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_oauth_clients_previous_secret"),
            "(previous_secret_hash IS NULL) = (previous_secret_expires_at IS NULL)",
        )


def downgrade():
    """Drop both columns (a previous secret still in its grace period stops working)."""
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_oauth_clients_previous_secret"), type_="check")
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_hash")
