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
gone keeps NULL, and so does a machine's family (no person). Only adding
the columns runs in the migration's transaction (no rewrite of the table,
a moment's lock); the rows are filled after it has committed, ``BATCH`` at a
time in statements of their own, so that sign-ins and refreshes go on
meanwhile (about 80 s for 1,000,000 families on a small machine). A family
not filled yet, or opened by the code before this one while it still runs,
is read as before: from its code (``idp.oauth.id_tokens``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_family_sign_in"
down_revision = "0024_one_audit_time_index"
branch_labels = None
depends_on = None


# A code's family is named after the code: "tf_<x>" for code "ac_<x>"; codes
# exchanged before that naming name their family in ``family_id`` instead.
# One statement sets both from the row before it (auth_time NULL selects it).
_FROM_CODE = sa.text(
    "UPDATE token_families SET"
    " auth_time = COALESCE("
    "(SELECT c.auth_time FROM oauth_authorization_codes c"
    " WHERE c.id = 'ac_' || substr(token_families.id, 4)),"
    " (SELECT c.auth_time FROM oauth_authorization_codes c"
    " WHERE c.family_id = token_families.id)),"
    " amr = COALESCE("
    "(SELECT c.amr FROM oauth_authorization_codes c"
    " WHERE c.id = 'ac_' || substr(token_families.id, 4)),"
    " (SELECT c.amr FROM oauth_authorization_codes c"
    " WHERE c.family_id = token_families.id))"
    " WHERE id > :after AND id <= :upto"
    " AND user_id IS NOT NULL AND parent_id IS NULL AND auth_time IS NULL"
)
_NEXT_BATCH = sa.text(
    "SELECT max(id) FROM (SELECT id FROM token_families WHERE id > :after"
    " ORDER BY id LIMIT :size) AS batch"
)
_FROM_PARENT = sa.text(
    "UPDATE token_families SET"
    " auth_time = (SELECT p.auth_time FROM token_families p"
    " WHERE p.id = token_families.parent_id),"
    " amr = (SELECT p.amr FROM token_families p WHERE p.id = token_families.parent_id)"
    " WHERE parent_id IS NOT NULL AND auth_time IS NULL AND EXISTS"
    " (SELECT 1 FROM token_families p WHERE p.id = token_families.parent_id"
    " AND p.auth_time IS NOT NULL)"
)

BATCH = 10_000
# Partner switches made one from another that are followed, as ID tokens followed them.
MAX_SWITCHES = 100


def upgrade():
    """Add ``token_families.auth_time`` and ``amr``; fill them for the logins there."""
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_time", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        after = ""
        while True:
            upto = bind.execute(_NEXT_BATCH, {"after": after, "size": BATCH}).scalar()
            if upto is None:
                break
            bind.execute(_FROM_CODE, {"after": after, "upto": upto})
            after = upto
        for _ in range(MAX_SWITCHES):
            if bind.execute(_FROM_PARENT).rowcount == 0:
                break


def downgrade():
    """Drop the two columns."""
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.drop_column("amr")
        batch_op.drop_column("auth_time")
