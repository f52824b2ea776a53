"""Each OAuth client names the algorithm its ID tokens are signed with.

Revision ID: 0017_id_token_signing_alg
Revises: 0016

A relying party whose OpenID Connect library accepts RS256 ID tokens only
could not sign in: every ID token was ES256. A client now registers
``id_token_signed_response_alg`` (OpenID Connect Dynamic Client Registration
1.0 section 2), ``ES256`` or ``RS256``. Existing clients keep ES256, the
default.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_id_token_signing_alg"
down_revision = "0016_one_signup_link_per_address"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``oauth_clients.id_token_signed_response_alg``, ES256 for every existing client."""
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "id_token_signed_response_alg",
                sa.String(length=10),
                server_default="ES256",
                nullable=False,
            )
        )
        batch_op.create_check_constraint(
            op.f("ck_oauth_clients_id_token_signed_response_alg"),
            "id_token_signed_response_alg IN ('ES256', 'RS256')",
        )


def downgrade():
    """Drop the column and its check."""
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("ck_oauth_clients_id_token_signed_response_alg"), type_="check"
        )
        batch_op.drop_column("id_token_signed_response_alg")
