"""Two-step sign-in: authenticator secrets, recovery codes, and how each login was proven.

Revision ID: 0021_totp
Revises: 0020_one_support_organization

``two_step_secrets`` holds an account's TOTP secret, encrypted with the
key-encryption key, with the step of the last code accepted (a replayed code
is refused). ``recovery_codes`` holds the SHA-256 of each single-use code.
``oauth_authorization_codes.amr`` records how the login the code was issued
in was proven (RFC 8176), for the ID tokens of its exchange and refreshes;
codes issued before say nothing and read as a password login.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_totp"
down_revision = "0020_one_support_organization"
branch_labels = None
depends_on = None


def upgrade():
    """Create the two tables and add ``oauth_authorization_codes.amr``."""
    op.create_table(
        "two_step_secrets",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("enabled_at", sa.DateTime(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_two_step_secrets_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_two_step_secrets")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))


def downgrade():
    """Drop the column and the two tables."""
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("amr")
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_user_id"))
    op.drop_table("recovery_codes")
    op.drop_table("two_step_secrets")
