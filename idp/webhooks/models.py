"""A partner's webhook endpoint and the record of every delivery attempt."""

from __future__ import annotations

import sqlalchemy as sa

from idp.extensions import db
from idp.models import created_at_column, id_column
from idp.timeutil import utcnow


class WebhookEndpoint(db.Model):
    """Where a partner receives events, with its signing secret encrypted under the KEK.

    The secret is kept decryptable (not hashed) because Standard Webhooks signs
    each message with HMAC over the secret; one endpoint per partner.
    """

    __tablename__ = "webhook_endpoints"

    id = id_column()
    partner_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, unique=True
    )
    url = sa.Column(sa.String(2000), nullable=False)
    secret_encrypted = sa.Column(sa.Text, nullable=False)
    secret_created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    created_at = created_at_column()
    updated_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)


class WebhookAttempt(db.Model):
    """One HTTP attempt at delivering one event to a partner, with what came back.

    An event withheld as it was about to be sent (the partner no longer sees its
    number) is listed too: no status code, and the reason as ``error``.
    """

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("ix_webhook_attempts_partner_created", "partner_id", "created_at"),)

    id = id_column()
    partner_id = sa.Column(sa.String(40), sa.ForeignKey("organizations.id"), nullable=False)
    # The outbox row carries the event; no FK so outbox housekeeping never loses history.
    message_id = sa.Column(sa.String(40), nullable=False, index=True)
    event_id = sa.Column(sa.String(40), nullable=False)
    event_type = sa.Column(sa.String(40), nullable=False)
    url = sa.Column(sa.String(2000), nullable=False)
    status_code = sa.Column(sa.Integer, nullable=True)
    error = sa.Column(sa.String(500), nullable=True)
    duration_ms = sa.Column(sa.Integer, nullable=False, default=0)
    created_at = created_at_column()
