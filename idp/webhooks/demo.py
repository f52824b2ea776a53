"""The demo webhook receiver (development only): shows what a partner's server would get.

It keeps the last events in this process's memory, shows whether each
signature verified, and never stores or logs a secret or a signature.
"""

from __future__ import annotations

import hmac
import json
import time
from collections import deque
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from idp.extensions import csrf, db
from idp.orgs.models import Organization
from idp.timeutil import isoformat, utcnow
from idp.webhooks.models import WebhookEndpoint
from idp.webhooks.signing import open_secret, sign

RECEIVER_PATH = "/demo/webhooks"
KEPT = 50
TOLERANCE_SECONDS = 300

receiver_bp = Blueprint("demo_webhooks", __name__)
csrf.exempt(receiver_bp)  # partners' servers are called by idp, not by a browser form
_received: deque[dict] = deque(maxlen=KEPT)


def _signer(message_id: str, timestamp: str, body: str, signatures: str) -> str | None:
    """The name of the partner whose secret produced one of ``signatures``, if any."""
    endpoints = db.session.execute(
        sa.select(WebhookEndpoint, Organization.name).join(
            Organization, Organization.id == WebhookEndpoint.partner_id
        )
    ).all()
    offered = signatures.split()
    for endpoint, partner_name in endpoints:
        if urlsplit(endpoint.url).path != RECEIVER_PATH:
            continue
        expected = sign(
            open_secret(endpoint.secret_encrypted, endpoint.id), message_id, int(timestamp), body
        )
        if any(hmac.compare_digest(expected, s) for s in offered):
            return partner_name
    return None


@receiver_bp.route(RECEIVER_PATH, methods=["POST"])
def receive():
    """Accept one event: 204 when its signature and timestamp verify, 400 otherwise."""
    body = request.get_data(as_text=True)
    message_id = request.headers.get("webhook-id", "")
    timestamp = request.headers.get("webhook-timestamp", "")
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= TOLERANCE_SECONDS
    partner = (
        _signer(message_id, timestamp, body, request.headers.get("webhook-signature", ""))
        if fresh
        else None
    )
    try:
        event = json.loads(body)
    except ValueError:
        event = {}
    _received.appendleft(
        {
            "received_at": isoformat(utcnow()),
            "webhook_id": message_id,
            "type": event.get("type", "?"),
            "partner": partner,
            "verified": partner is not None,
            "data": json.dumps(event.get("data", {}), indent=1, sort_keys=True),
        }
    )
    return ("", 204) if partner else ("", 400)


@receiver_bp.route(RECEIVER_PATH, methods=["GET"])
def show():
    """The events this process received, newest first."""
    return render_template("webhooks/demo_receiver.html", events=list(_received))
