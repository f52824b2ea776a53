"""At most one first signing key per algorithm, enforced by the database.

Revision ID: 0018_one_first_key_per_algorithm
Revises: 0017_id_token_signing_alg

A request (or an operator's command) that finds no key of an algorithm makes
one that signs at once. Two instances doing so at the same moment each
stored one, so the algorithm had two keys signing from birth. The new
``signing_keys.first_of`` names the algorithm a key was made first of, under
a UNIQUE constraint: the second insert fails and its instance uses the key
that was stored.

The earliest key of each algorithm already stored becomes its first; keys
already made twice stay as they are (both are published, the newer signs).
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_one_first_key_per_algorithm"
down_revision = "0017_id_token_signing_alg"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``signing_keys.first_of`` (unique) and set it on each algorithm's earliest key."""
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_of", sa.String(length=10), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_signing_keys_first_of"), ["first_of"])
    op.execute(
        "UPDATE signing_keys SET first_of = algorithm WHERE NOT EXISTS ("
        " SELECT 1 FROM signing_keys AS earlier"
        " WHERE earlier.algorithm = signing_keys.algorithm"
        " AND (earlier.activates_at < signing_keys.activates_at"
        "  OR (earlier.activates_at = signing_keys.activates_at"
        "   AND earlier.kid < signing_keys.kid)))"
    )


def downgrade():
    """Drop the column and its constraint."""
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_signing_keys_first_of"), type_="unique")
        batch_op.drop_column("first_of")
