"""Demo channels: a terminated number and its reuse, and Acme's webhook on the demo receiver."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from idp.channels.models import Channel, ChannelStatusChange, Waba
from idp.channels.queries import partners_watching
from idp.channels.service import channel_event
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.timeutil import utcnow
from idp.webhooks.demo import RECEIVER_PATH
from idp.webhooks.models import WebhookEndpoint
from idp.webhooks.service import emit_partner_event, endpoint_for
from idp.webhooks.signing import new_secret, seal_secret

# A Blue Bakery number that was terminated and registered again as a new channel.
REUSED_NUMBER = "+14155550104"
_TERMINATED_PATH = ["created", "pending", "ready", "running", "live", "terminated"]


def receiver_url() -> str:
    """The demo webhook receiver on the local server."""
    return current_app.config["IDP_ISSUER"] + RECEIVER_PATH


def _acme_endpoint(partner_id: str) -> WebhookEndpoint:
    endpoint = endpoint_for(partner_id)
    if endpoint is None:
        # The secret is random and never printed: the receiver page reads it from the
        # database to check signatures, as a partner's server would from its config.
        endpoint = WebhookEndpoint(
            id=new_id(PREFIXES["webhook_endpoint"]), partner_id=partner_id, url=receiver_url()
        )
        endpoint.secret_encrypted = seal_secret(new_secret(), endpoint.id)
        endpoint.secret_created_at = endpoint.updated_at = utcnow()
        db.session.add(endpoint)
        db.session.flush()
    return endpoint


def _history(channel: Channel, path: list[str], start) -> None:
    previous = None
    for i, status in enumerate(path):
        reason = "number ported away by the client" if status == "terminated" else "demo data"
        db.session.add(
            ChannelStatusChange(
                id=new_id(PREFIXES["status_change"]),
                channel=channel,
                from_status=previous,
                to_status=status,
                reason=reason,
                actor_id="demo",
                created_at=start + timedelta(days=i),
            )
        )
        previous = status


def _terminated_and_reused(waba: Waba) -> dict:
    old = db.session.scalar(
        sa.select(Channel).where(
            Channel.phone_number == REUSED_NUMBER, Channel.status == "terminated"
        )
    )
    if old is None:
        start = utcnow() - timedelta(days=30)
        old = Channel.create(
            waba,
            REUSED_NUMBER,
            "Blue Bakery Old Line",
            status="terminated",
            account_mode="live",
            created_at=start,
            status_changed_at=start + timedelta(days=5),
            terminated_at=start + timedelta(days=5),
        )
        db.session.add(old)
        _history(old, _TERMINATED_PATH, start)
        db.session.flush()
        event = {**channel_event(old), "previous_status": "live", "reason": "demo data"}
        for partner_id in partners_watching(waba.client_id, old.id):
            emit_partner_event(partner_id, "channel_status_changed", event, ordering_key=old.id)
    new = db.session.scalar(
        sa.select(Channel).where(
            Channel.phone_number == REUSED_NUMBER, Channel.status != "terminated"
        )
    )
    if new is None:
        new = Channel.create(waba, REUSED_NUMBER, "Blue Bakery New Line", status="created")
        db.session.add(new)
        _history(new, ["created"], utcnow())
        db.session.flush()
    return {"terminated": old.id, "active": new.id, "phone_number": REUSED_NUMBER}


def load(data: dict) -> None:
    """Acme's webhook on the demo receiver, then a terminated number reused by a new channel."""
    acme = next(p for p in data["partners"] if p["name"] == "Acme Messaging")
    endpoint = _acme_endpoint(acme["id"])
    bakery = next(c for c in data["clients"] if c["name"] == "Blue Bakery")
    waba = db.session.scalar(sa.select(Waba).where(Waba.client_id == bakery["id"]))
    data["webhooks"] = {
        "partner": acme["name"],
        "url": endpoint.url,
        "receiver_page": receiver_url(),
        "reused_number": _terminated_and_reused(waba),
    }
