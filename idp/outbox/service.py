"""Writing messages to the outbox inside the caller's transaction."""

from __future__ import annotations

import logging

from flask import render_template

from idp.extensions import db
from idp.ids import PREFIXES, new_time_ordered_id
from idp.outbox.models import OutboxMessage

log = logging.getLogger(__name__)


def enqueue_email(
    to: str, subject: str, body: str, *, template: str | None = None
) -> OutboxMessage:
    """Add an email to the outbox; the caller's commit makes it (and its cause) durable."""
    message = OutboxMessage(
        id=new_time_ordered_id(PREFIXES["outbox"]),
        kind="email",
        recipient=to,
        subject=subject,
        body=body,
        payload={"template": template} if template else None,
    )
    db.session.add(message)
    return message


def enqueue_templated_email(to: str, subject: str, template: str, **context) -> OutboxMessage:
    """Render the plain-text email ``template`` and add it to the outbox."""
    body = render_template(template, subject=subject, **context)
    return enqueue_email(to, subject, body, template=template)
