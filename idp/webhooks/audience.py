"""Whether a partner may still receive an event: asked when it is queued, and again as it is sent.

An event about a client's number is queued for the partners that see the number at
that moment. The client may revoke or narrow its grant before the event goes out
(it waits for a retry, for an earlier event of the same number, or is a redelivery),
so the same rule of ``policies.partners`` is asked again for the one partner just
before sending. Grant events and ``client_created`` concern the partner itself and
always go out.
"""

from __future__ import annotations

import json
from typing import Any

from idp.channels.queries import client_relation
from idp.outbox.models import OutboxMessage
from policies.partners import partner_hears_of_key, partner_sees_channel

CHANNEL_EVENTS = frozenset({"channel_created", "channel_status_changed"})
KEY_EVENTS = frozenset({"api_key_created", "api_key_replaced", "api_key_revoked"})


def event_data(message: OutboxMessage) -> dict[str, Any]:
    """The ``data`` member of a queued webhook event."""
    return json.loads(message.body).get("data") or {}


def withheld_because(partner_id: str, event_type: str, data: dict[str, Any]) -> str | None:
    """Why the partner may no longer receive this event, or None when it still may."""
    if event_type not in CHANNEL_EVENTS | KEY_EVENTS:
        return None
    client_id, channel_id = data.get("client_id"), data.get("channel_id")
    relation = client_relation(partner_id, client_id) if client_id else None
    if event_type in CHANNEL_EVENTS:
        decision = partner_sees_channel(partner_id, relation, channel_id)
    else:
        decision = partner_hears_of_key(partner_id, data.get("partner_id"), relation, channel_id)
    return None if decision else "the client no longer shares this number with the partner"
