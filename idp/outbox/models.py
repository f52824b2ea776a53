"""Outbox rows: one per message to deliver (email now, partner webhooks later)."""

from __future__ import annotations

import sqlalchemy as sa

from idp.extensions import db
from idp.models import created_at_column, id_column, one_of
from idp.timeutil import utcnow

OUTBOX_KINDS = ("email", "webhook")
OUTBOX_STATUSES = ("pending", "sent", "failed")
# What an email's body becomes once the email is sent or given up: the body held its
# links with their secrets (password reset, verification, invitation), and a secret
# kept after delivery would let whoever reads the database or a backup use the link.
# Only the SHA-256 of a secret is kept elsewhere (``email_tokens``).
REDACTED_EMAIL_BODY = "[removed once the email was sent or given up: it carried link secrets]"


class OutboxMessage(db.Model):
    """A message written in the same transaction as the change it reports."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        one_of("kind", OUTBOX_KINDS, "kind"),
        one_of("status", OUTBOX_STATUSES, "status"),
        sa.Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    )

    id = id_column()
    kind = sa.Column(sa.String(16), nullable=False)
    recipient = sa.Column(sa.String(2000), nullable=False)
    subject = sa.Column(sa.String(300), nullable=True)
    body = sa.Column(sa.Text, nullable=False)
    payload = sa.Column(sa.JSON, nullable=True)
    ordering_key = sa.Column(sa.String(120), nullable=True, index=True)
    status = sa.Column(sa.String(16), nullable=False, default="pending")
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    next_attempt_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    last_error = sa.Column(sa.String(1000), nullable=True)
    created_at = created_at_column()
    sent_at = sa.Column(sa.DateTime, nullable=True)
