"""Each login's token family keeps when and how its person signed in.

Revision ID: 0025_family_sign_in
Revises: 0024_one_audit_time_index

An ID token renewed by a refresh or a partner switch carries the ``auth_time``
and ``amr`` of the original sign-in (OpenID Connect Core 12.2). They were
read from the authorization code that opened the login, following a switched
family back through the families it came from: a family switched from may be
purged before the one switched to, and the renewed token then said nothing
of the sign-in. ``token_families.auth_time`` and ``amr`` now hold them,
written with the family.

Families already there take them from their code, and switched families from
the family they came from, one generation per pass; a family whose code is
gone keeps NULL, and its renewed ID tokens say nothing of the sign-in, as
before. Machine families (no person) keep NULL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_family_sign_in"
down_revision = "0024_one_audit_time_index"
branch_labels = None
depends_on = None

# A code's family is named after the code: "tf_<x>" for code "ac_<x>"; codes
# exchanged before that naming name their family in ``family_id`` instead.
_FROM_CODE = """
UPDATE token_families SET {column} = COALESCE(
    (SELECT c.{column} FROM oauth_authorization_codes c
      WHERE c.id = 'ac_' || substr(token_families.id, 4)),
    (SELECT c.{column} FROM oauth_authorization_codes c
      WHERE c.family_id = token_families.id))
WHERE user_id IS NOT NULL AND parent_id IS NULL AND auth_time IS NULL
"""

_FROM_PARENT = """
UPDATE token_families SET
    auth_time = (SELECT p.auth_time FROM token_families p WHERE p.id = token_families.parent_id),
    amr = (SELECT p.amr FROM token_families p WHERE p.id = token_families.parent_id)
WHERE parent_id IS NOT NULL AND auth_time IS NULL AND EXISTS
    (SELECT 1 FROM token_families p WHERE p.id = token_families.parent_id
      AND p.auth_time IS NOT NULL)
"""

# Partner switches made one from another that are followed, as ID tokens followed them.
MAX_SWITCHES = 100


def upgrade():
    """Add ``token_families.auth_time`` and ``amr``; fill them for the logins there."""
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_time", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))
    bind = op.get_bind()
    # amr first: the auth_time still NULL is what marks a family not yet filled.
    bind.execute(sa.text(_FROM_CODE.format(column="amr")))
    bind.execute(sa.text(_FROM_CODE.format(column="auth_time")))
    for _ in range(MAX_SWITCHES):
        if bind.execute(sa.text(_FROM_PARENT)).rowcount == 0:
            break


def downgrade():
    """Drop the two columns."""
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.drop_column("amr")
        batch_op.drop_column("auth_time")
