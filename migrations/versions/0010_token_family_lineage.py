"""Which browser login and which family a token family came from.

Revision ID: 0010_token_family_lineage
Revises: 0009_code_nonce_unique

A partner switch (token exchange) opened a family of its own that neither a
logout nor a reuse of the family it came from ended: a stolen access token
could be exchanged for a refresh token that outlived both. Each family now
names the family it was exchanged from (``parent_id``) and the browser login
its code was issued in (``login_session_id``, carried by the code), so that
revoking a family ends the families exchanged from it, and logging out ends
every family of that login.

No index: both are read only among one user's families, which the index on
``user_id`` finds. Rows written before stay unlinked (NULL), as they were.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_token_family_lineage"
down_revision = "0009_code_nonce_unique"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``parent_id`` and ``login_session_id`` to families, ``login_session_id`` to codes."""
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("login_session_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login_session_id", sa.String(length=40), nullable=True))


def downgrade():
    """Drop the three columns."""
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("login_session_id")
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.drop_column("login_session_id")
        batch_op.drop_column("parent_id")
