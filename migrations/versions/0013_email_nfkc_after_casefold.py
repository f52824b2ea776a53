"""Normalized addresses are put in NFKC form again after case folding.

Revision ID: 0013_email_nfkc_after_casefold
Revises: 0012_redact_final_email_bodies

``normalize_email`` case-folded an NFKC address and stopped there, but case
folding can leave a letter and a combining mark where the other spelling has
one composed character (``ΑΪ́`` folds to ``αΐ``, ``αΐ`` stays ``αΐ``), so two
spellings of one address could open two accounts. The rule now ends with NFKC
again; this rewrites the stored comparison forms that the new rule changes.
A stored form is the old rule's output, so the new one is its NFKC form.

Only addresses with characters outside ASCII can change; those are found by
their byte length. An account whose new form another account already holds
(the very duplicate this closes) keeps its old form and is named in a warning,
for support to reassign.
"""

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0013_email_nfkc_after_casefold"
down_revision = "0012_redact_final_email_bodies"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TABLES = ("users", "email_tokens", "invitations", "imported_accounts", "email_conflicts")


def upgrade():
    conn = op.get_bind()
    for name in TABLES:
        table = sa.table(name, sa.column("id"), sa.column("email_normalized"))
        column = table.c.email_normalized
        if conn.dialect.name == "postgresql":
            wider = sa.func.octet_length(column) != sa.func.char_length(column)
        else:
            wider = sa.func.length(sa.cast(column, sa.LargeBinary)) != sa.func.length(column)
        for row_id, old in conn.execute(sa.select(table.c.id, column).where(wider)).all():
            new = unicodedata.normalize("NFKC", old)
            if new == old:
                continue
            if name == "users" and conn.execute(
                sa.select(table.c.id).where(column == new)
            ).first():
                log.warning("account %s: its address is another account's spelling", row_id)
                continue
            conn.execute(sa.update(table).where(table.c.id == row_id).values(email_normalized=new))


def downgrade():
    """Nothing to undo: the new forms are what the old rule should have given."""
