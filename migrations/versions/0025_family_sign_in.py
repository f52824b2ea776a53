"""Each login's token family keeps when and how its person signed in.

Revision ID: 0025_family_sign_in
Revises: 0024_one_audit_time_index

An ID token renewed by a refresh or a partner switch carries the ``auth_time``
and ``amr`` of the original sign-in (OpenID Connect Core 12.2). They were
read from the authorization code that opened the login, following a switched
family back through the families it came from: a family switched from may be
purged before the one switched to, and the renewed token then said nothing
of the sign-in. ``token_families.auth_time`` and ``amr`` now hold them,
written with the family. Adding two nullable columns rewrites no row and
takes the table's lock for a moment; 0026 fills the logins already there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_family_sign_in"
down_revision = "0024_one_audit_time_index"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``token_families.auth_time`` and ``amr``."""
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_time", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))


def downgrade():
    """Drop the two columns."""
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.drop_column("amr")
        batch_op.drop_column("auth_time")
