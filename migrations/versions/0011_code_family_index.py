"""An index on the codes that name a family, so that purging a family reads no codes.

Revision ID: 0011_code_family_index
Revises: 0010_token_family_lineage

``oauth_authorization_codes.family_id`` references ``token_families`` with no
index behind it, so deleting a family made PostgreSQL check that no code
names it by scanning every code: on the 1m bench database (1,000,000 codes)
that cost 194 ms per family, and a purge batch of 1,000 families more than
three minutes, growing with every login ever made. Only codes exchanged
before families were named after their code carry the link, so the index is
partial (``family_id IS NOT NULL``): it is nearly empty and the codes written
at every login never enter it. PostgreSQL uses it for the key check, since
``family_id = $1`` implies the column is not NULL. Building it reads the
codes table once (0.24 s for 1,000,000 codes); new codes wait meanwhile.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_code_family_index"
down_revision = "0010_token_family_lineage"
branch_labels = None
depends_on = None

LINKED = "family_id IS NOT NULL"


def upgrade():
    """Add the partial index on ``oauth_authorization_codes.family_id``."""
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_oauth_authorization_codes_family_id",
            ["family_id"],
            unique=False,
            sqlite_where=sa.text(LINKED),
            postgresql_where=sa.text(LINKED),
        )


def downgrade():
    """Drop it."""
    with op.batch_alter_table("oauth_authorization_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_authorization_codes_family_id")
