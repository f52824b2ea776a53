"""One code per client and nonce, found and enforced by a UNIQUE index.

Revision ID: 0009_code_nonce_unique
Revises: 0008_open_invitations

A client that sends a nonce it used before is replaying (OpenID Connect Core
3.1.2.1). The check read the client's codes through an index on
``client_id`` alone, so it read every code the client was ever issued and
each login got slower with every login before it; and as a check before the
INSERT it let two simultaneous requests with one nonce both through. A
UNIQUE index on ``(client_id, nonce)`` now refuses the second INSERT (codes
without a nonce are NULLs, which never collide) and still serves lookups by
``client_id`` alone, so it replaces that index.

Only an OpenID Connect request's non-empty nonce is kept from now on, so
older empty or non-OpenID nonces are cleared, and of older duplicates (which
only such a race could make) the newest code keeps its nonce. The cleanup
visits only the (client, nonce) pairs that repeat. Building the index locks
new codes (logins) out for the seconds it takes on a large table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_code_nonce_unique"
down_revision = "0008_open_invitations"
branch_labels = None
depends_on = None


def upgrade():
    """Clear nonces that are empty, outside OpenID Connect or repeated, then swap the index."""
    op.execute(
        sa.text(
            "UPDATE oauth_authorization_codes SET nonce = NULL "
            "WHERE nonce = '' OR (' ' || scope || ' ') NOT LIKE '% openid %'"
        )
    )
    op.execute(
        sa.text(
            "UPDATE oauth_authorization_codes SET nonce = NULL "
            "WHERE (client_id, nonce) IN ("
            " SELECT client_id, nonce FROM oauth_authorization_codes WHERE nonce IS NOT NULL"
            " GROUP BY client_id, nonce HAVING count(*) > 1)"
            " AND EXISTS ("
            " SELECT 1 FROM oauth_authorization_codes AS newer"
            " WHERE newer.client_id = oauth_authorization_codes.client_id"
            " AND newer.nonce = oauth_authorization_codes.nonce"
            " AND (newer.created_at > oauth_authorization_codes.created_at"
            "  OR (newer.created_at = oauth_authorization_codes.created_at"
            "   AND newer.id > oauth_authorization_codes.id)))"
        )
    )
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.create_index(
            "uq_oauth_authorization_codes_client_nonce", ["client_id", "nonce"], unique=True
        )
        batch_op.drop_index("ix_oauth_authorization_codes_client_id")


def downgrade():
    """Back to the index on ``client_id`` alone (cleared nonces stay cleared)."""
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_authorization_codes_client_id", ["client_id"], unique=False)
        batch_op.drop_index("uq_oauth_authorization_codes_client_nonce")
