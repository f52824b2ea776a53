"""Helpers for tests that go through pages and emails like a person would."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import sqlalchemy as sa

from idp.extensions import db
from idp.outbox.models import OutboxMessage
from idp.outbox.worker import run_once
from tests.fixtures.smtp import first_link

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "the page has no CSRF-protected form"
    return match.group(1)


def submit_form(client, url: str, **fields):
    """GET the page at ``url`` and POST its form with ``fields`` (plus the CSRF token)."""
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf_of(page.get_data(as_text=True)), **fields})


def deliver_mail(app, smtp_url: str) -> dict:
    """Run one round of the outbox worker against the test SMTP server."""
    previous = app.config.get("IDP_SMTP_URL")
    app.config["IDP_SMTP_URL"] = smtp_url
    try:
        with app.app_context():
            counts = run_once()
            db.session.remove()
    finally:
        app.config["IDP_SMTP_URL"] = previous
    return counts


def received_link(mailbox, to: str, index: int = -1) -> str:
    """The path and query of the link in the ``index``-th message received by ``to``."""
    message = mailbox.wait_for(to, count=1 if index == -1 else index + 1)[index]
    parts = urlsplit(first_link(message))
    return f"{parts.path}?{parts.query}"


def queued_link_secrets(to: str) -> set[str]:
    """The link secrets (``token=``) of the emails to ``to`` still in the outbox."""
    bodies = db.session.scalars(sa.select(OutboxMessage.body).where(OutboxMessage.recipient == to))
    return {match.group(1) for body in bodies for match in re.finditer(r"token=([\w-]+)", body)}
