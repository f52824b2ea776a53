"""Partners with a webhook endpoint hear about grants and keys, in the change's own transaction."""

import json

import pytest

from idp.consent import service
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from idp.webhooks.models import WebhookEndpoint
from tests.consent.factories import client_actor, make_grant, make_key
from tests.factories import make_channel, make_org, make_user


@pytest.fixture
def world(app_ctx):
    client, partner, deaf = make_org("client"), make_org("partner"), make_org("partner")
    owner = make_user("client", client, "owner")
    db.session.add(
        WebhookEndpoint(
            id="we_test",
            partner_id=partner.id,
            url="https://partner.example/hook",
            secret_encrypted="unused-by-these-tests",
        )
    )
    channels = [make_channel(client), make_channel(client)]
    db.session.commit()
    return client, partner, deaf, owner, channels


def events_for(partner):
    rows = db.session.scalars(
        db.select(OutboxMessage)
        .where(OutboxMessage.kind == "webhook", OutboxMessage.recipient == partner.id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return [json.loads(row.body) for row in rows]


def test_a_partner_hears_of_its_grant_and_keys(world):
    client, partner, deaf, owner, (ch1, ch2) = world
    actor = client_actor(client, owner)
    grant = service.approve_consent(
        actor,
        partner_id=partner.id,
        oauth_client_id=None,
        scope="api_keys:manage channels:read",
        channel_ids=[ch1.id, ch2.id],
    )
    make_key(ch1, partner=partner)
    service.revoke_grant_channel(actor, client.id, grant.id, ch1.id)
    service.revoke_grant(actor, client.id, grant.id)
    types = [e["type"] for e in events_for(partner)]
    assert types == [
        "grant_created",
        "api_key_created",
        "api_key_revoked",
        "grant_changed",
        "grant_revoked",
    ]
    created = events_for(partner)[0]["data"]
    assert created["client"] == client.id and sorted(created["channels"]) == sorted(
        [ch1.id, ch2.id]
    )
    assert all(
        "api_key" not in e["data"] and "secret_hash" not in e["data"] for e in events_for(partner)
    )


def test_a_partner_without_an_endpoint_gets_nothing_and_nothing_breaks(world):
    client, partner, deaf, owner, (ch1, _) = world
    make_grant(client, deaf, [ch1])
    make_key(ch1, partner=deaf)
    assert events_for(deaf) == []


def listening(kind: str):
    partner = make_org(kind)
    db.session.add(
        WebhookEndpoint(
            id=f"we_{partner.id[-12:]}",
            partner_id=partner.id,
            url="https://other.example/hook",
            secret_encrypted="unused-by-these-tests",
        )
    )
    return partner


def test_key_events_go_only_to_the_partners_granted_the_number(world):
    """Key events name the key's partner: one watching the client but not the number hears none."""
    client, partner, _, _, (ch1, ch2) = world
    onboarder, elsewhere = listening("partner"), listening("partner")
    client.onboarding_partner_id = onboarder.id
    db.session.commit()
    make_grant(client, partner, [ch1])
    make_grant(client, elsewhere, [ch2])
    make_key(ch1)  # the client's own key
    make_key(ch1, partner=partner)  # revokes the client's key at once
    make_key(ch2)

    def key_events(whom):
        return [e["type"] for e in events_for(whom) if e["type"].startswith("api_key")]

    assert key_events(partner) == ["api_key_created", "api_key_revoked", "api_key_created"]
    assert key_events(elsewhere) == ["api_key_created"]  # its own number's key only
    assert key_events(onboarder) == []
