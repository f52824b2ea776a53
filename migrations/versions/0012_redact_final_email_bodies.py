"""Emails already sent or given up no longer keep the links they carried.

Revision ID: 0012_redact_final_email_bodies
Revises: 0011_code_family_index

An email's body holds its links with their secrets (password reset,
verification, invitation), while ``email_tokens`` keeps only their SHA-256.
The worker kept the body once the email was sent or given up, so whoever read
the database or a backup could use a link still valid. The worker now
replaces the body in the UPDATE that makes an email final; this clears the
bodies of the emails made final before. Pending emails keep theirs (they are
still to be sent), and webhook events keep theirs (the signed event, for
redelivery; it carries no secret).

One UPDATE of the final emails, found through ``ix_outbox_messages_due``
(status first). Workers only touch pending rows, so they never wait on it.
Backups taken before still hold the bodies. There is no way back: the
secrets are gone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_redact_final_email_bodies"
down_revision = "0011_code_family_index"
branch_labels = None
depends_on = None

# The note the worker writes (``idp.outbox.models.REDACTED_EMAIL_BODY`` when this was written).
REDACTED = "[removed once the email was sent or given up: it carried link secrets]"


def upgrade():
    """Replace the bodies of sent and failed emails with the note."""
    op.execute(
        sa.text(
            "UPDATE outbox_messages SET body = :note"
            " WHERE kind = 'email' AND status IN ('sent', 'failed') AND body <> :note"
        ).bindparams(note=REDACTED)
    )


def downgrade():
    """Nothing to undo: the bodies cannot come back."""
