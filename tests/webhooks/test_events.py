"""A partner's server hears of new clients, numbers and status changes within one worker round."""

from __future__ import annotations

import json

from standardwebhooks import Webhook

from idp.extensions import db
from idp.outbox import worker
from tests.channels.conftest import provisioning_bearer
from tests.consent.factories import make_grant, make_key
from tests.factories import make_channel, make_org


def _types(receiver):
    return [json.loads(body)["type"] for body in receiver.bodies()]


def _set_status(client, support, channel, status, reason=None):
    res = client.post(
        f"/v1/channels/{channel.id}/status",
        json={"status": status, "reason": reason},
        headers=provisioning_bearer(support),
    )
    assert res.status_code == 200, res.json


def test_a_client_signing_up_through_the_partner_is_announced(hooked_partner, receiver):
    client_org = make_org("client", "New Bakery", onboarding_partner_id=hooked_partner.partner.id)
    make_org("client", "Someone else's")
    db.session.commit()
    worker.run_once()
    [got] = receiver.requests
    event = Webhook(hooked_partner.secret).verify(got.body, got.headers)
    assert event["type"] == "client_created"
    assert event["data"]["client_id"] == client_org.id
    assert event["data"]["name"] == "New Bakery"


def test_registration_and_status_changes_reach_the_partner_in_order(
    client, hooked_partner, receiver
):
    partner = hooked_partner.partner
    bakery = make_org("client", "Bakery", onboarding_partner_id=partner.id)
    support = make_org("support", "Platform")
    waba = make_channel(bakery, "created").waba
    db.session.commit()
    worker.run_once()
    receiver.requests.clear()
    bearer = provisioning_bearer(support)

    created = client.post(
        f"/v1/wabas/{waba.id}/channels",
        json={"phone_number": "+14155552671", "display_name": "Orders"},
        headers=bearer,
    ).json
    for status in ("pending", "ready", "running", "live"):
        res = client.post(
            f"/v1/channels/{created['id']}/status",
            json={"status": status, "reason": f"now {status}"},
            headers=bearer,
        )
        assert res.status_code == 200
    worker.run_once()

    assert _types(receiver) == ["channel_created"] + ["channel_status_changed"] * 4
    statuses = [json.loads(b)["data"]["status"] for b in receiver.bodies()]
    assert statuses == ["created", "pending", "ready", "running", "live"]
    last = Webhook(hooked_partner.secret).verify(
        receiver.requests[-1].body, receiver.requests[-1].headers
    )
    assert last["data"]["previous_status"] == "running"
    assert last["data"]["reason"] == "now live"


def test_a_partner_without_relation_hears_nothing(client, hooked_partner, receiver):
    stranger = make_org("client", "Unrelated")
    support = make_org("support", "Platform")
    channel = make_channel(stranger, "running")
    db.session.commit()
    _set_status(client, support, channel, "live")
    worker.run_once()
    assert receiver.requests == []


def test_termination_is_announced_before_the_key_revocation(client, hooked_partner, receiver):
    bakery = make_org("client", "Bakery", onboarding_partner_id=hooked_partner.partner.id)
    support = make_org("support", "Platform")
    channel = make_channel(bakery, "live")
    db.session.commit()
    make_grant(bakery, hooked_partner.partner, [channel])
    make_key(channel, partner=hooked_partner.partner)
    worker.run_once()
    receiver.requests.clear()

    _set_status(client, support, channel, "terminated", "client left")
    worker.run_once()
    assert _types(receiver) == ["channel_status_changed", "api_key_revoked"]


def test_a_grant_to_manage_keys_only_brings_no_status_events(client, hooked_partner, receiver):
    """The client let the partner manage keys on one number, not see channel status: the
    partner hears of neither that number's status nor the client's other numbers."""
    bakery = make_org("client", "Bakery")  # not onboarded by the partner
    support = make_org("support", "Platform")
    shared, private = make_channel(bakery, "live"), make_channel(bakery, "running")
    db.session.commit()
    make_grant(bakery, hooked_partner.partner, [shared], scope="api_keys:manage")
    worker.run_once()
    receiver.requests.clear()

    _set_status(client, support, shared, "suspended")
    _set_status(client, support, private, "suspended")
    worker.run_once()
    assert receiver.requests == []
