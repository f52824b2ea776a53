"""``client_created`` events: a partner hears of each client that signs up through it.

Client organizations are created by several flows (sign-up through a partner's
consent link, legacy import, demo data). Rather than each remembering to tell
the partner, one session hook writes the event in the same flush, so it exists
exactly when the client does.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from idp.orgs.models import Organization
from idp.timeutil import isoformat, utcnow
from idp.webhooks.service import emit_partner_event


def client_event(client: Organization) -> dict:
    """What a partner is told about a new client."""
    return {
        "client_id": client.id,
        "name": client.name,
        "onboarding_partner_id": client.onboarding_partner_id,
        "created_at": isoformat(client.created_at or utcnow()),
    }


def _announce_new_clients(session: Session, flush_context, instances) -> None:
    for obj in list(session.new):
        if not isinstance(obj, Organization) or obj.kind != "client":
            continue
        partner_id = obj.onboarding_partner_id or (
            obj.onboarding_partner.id if obj.onboarding_partner is not None else None
        )
        if partner_id is None:
            continue
        obj.onboarding_partner_id = partner_id
        with session.no_autoflush:
            emit_partner_event(partner_id, "client_created", client_event(obj), ordering_key=obj.id)


def register() -> None:
    """Install the hook once per process."""
    if not sa.event.contains(Session, "before_flush", _announce_new_clients):
        sa.event.listen(Session, "before_flush", _announce_new_clients)
