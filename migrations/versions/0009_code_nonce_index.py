"""Look up a client's authorization codes by nonce through an index.

Revision ID: 0009_code_nonce_index
Revises: 0008_open_invitations

Every authorization request with an OpenID Connect ``nonce`` asks whether the
client used that nonce before. The only index was on ``client_id``, so the
answer read every code the client was ever issued, and a hub's logins grew
slower with every login. ``(client_id, nonce)`` answers it in one probe and
still serves lookups by ``client_id`` alone, so it replaces that index.
"""

from alembic import op

revision = "0009_code_nonce_index"
down_revision = "0008_open_invitations"
branch_labels = None
depends_on = None


def upgrade():
    """Index codes by client and nonce instead of by client alone."""
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_oauth_authorization_codes_client_id_nonce", ["client_id", "nonce"], unique=False
        )
        batch_op.drop_index("ix_oauth_authorization_codes_client_id")


def downgrade():
    """Back to the index on ``client_id`` alone."""
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_authorization_codes_client_id", ["client_id"], unique=False)
        batch_op.drop_index("ix_oauth_authorization_codes_client_id_nonce")
