"""At most one unspent sign-up link per address, enforced by the database.

Revision ID: 0016_one_signup_link_per_address
Revises: 0015_index_user_references

A newer sign-up spends the older links of its address, so that only the
latest link works; two sign-ups at once take turns on PostgreSQL (an
advisory lock). Only that code kept the rule, so a writer that skipped it
could leave two links that both create the account. A partial UNIQUE index
on ``email_tokens.email_normalized`` over the sign-up links not yet used
now refuses the second one.

Links written before the lock existed may break the rule: of an address's
unspent sign-up links the newest stays, the others are spent as a newer
sign-up would have spent them. The cleanup visits only the addresses that
repeat.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0016_one_signup_link_per_address"
down_revision = "0015_index_user_references"
branch_labels = None
depends_on = None

UNSPENT_SIGNUP = "purpose = 'signup' AND used_at IS NULL"


def upgrade():
    """Spend all but the newest unspent sign-up link of each address, then add the index."""
    op.execute(
        sa.text(
            "UPDATE email_tokens SET used_at = :now"
            f" WHERE {UNSPENT_SIGNUP} AND email_normalized IN ("
            f" SELECT email_normalized FROM email_tokens WHERE {UNSPENT_SIGNUP}"
            " GROUP BY email_normalized HAVING count(*) > 1)"
            " AND EXISTS ("
            " SELECT 1 FROM email_tokens AS newer"
            " WHERE newer.purpose = 'signup' AND newer.used_at IS NULL"
            " AND newer.email_normalized = email_tokens.email_normalized"
            " AND (newer.created_at > email_tokens.created_at"
            "  OR (newer.created_at = email_tokens.created_at AND newer.id > email_tokens.id)))"
        ).bindparams(now=datetime.now(UTC).replace(tzinfo=None))
    )
    op.create_index(
        "uq_email_tokens_unspent_signup",
        "email_tokens",
        ["email_normalized"],
        unique=True,
        sqlite_where=sa.text(UNSPENT_SIGNUP),
        postgresql_where=sa.text(UNSPENT_SIGNUP),
    )


def downgrade():
    """Drop the index (the links it spent stay spent)."""
    op.drop_index("uq_email_tokens_unspent_signup", table_name="email_tokens")
