"""Partners with a webhook endpoint hear about grants and keys, in the change's own transaction."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from idp.apikeys import service as keys
from idp.channels import service as channel_service
from idp.consent import service
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from idp.webhooks.models import WebhookEndpoint
from policies.actor import Actor
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


def test_status_events_go_to_the_partners_shown_the_number(world):
    """A grantee hears of a number's status only while its grant covers it with
    `channels:read`; the onboarding partner hears of every number."""
    client, partner, _, owner, (ch1, ch2) = world
    keys_only, onboarder = listening("partner"), listening("partner")
    support = make_org("support")
    client.onboarding_partner_id = onboarder.id
    db.session.commit()
    actor = client_actor(client, owner)
    provisioning = Actor("support", support.id, scopes=frozenset({"channels:write"}), client_id="p")

    def approve(scope, *chosen):
        return service.approve_consent(
            actor,
            partner_id=partner.id,
            oauth_client_id=None,
            scope=scope,
            channel_ids=[c.id for c in chosen],
        )

    def move(channel, status):
        channel_service.change_status(provisioning, channel.id, status, None)

    def status_events(whom):
        events = events_for(whom)
        return [e["data"]["channel_id"] for e in events if e["type"] == "channel_status_changed"]

    grant = approve("api_keys:manage channels:read", ch1)
    make_grant(client, keys_only, [ch1, ch2], scope="api_keys:manage")
    move(ch1, "suspended")
    move(ch2, "suspended")
    assert status_events(partner) == [ch1.id]
    assert status_events(keys_only) == []
    assert status_events(onboarder) == [ch1.id, ch2.id]

    approve("api_keys:manage", ch1, ch2)  # the status is no longer shared
    move(ch1, "running")
    approve("channels:read", ch2)  # only the other number is
    move(ch1, "suspended")
    move(ch2, "running")
    assert status_events(partner) == [ch1.id, ch2.id]
    service.revoke_grant(actor, client.id, grant.id)
    move(ch2, "suspended")
    assert status_events(partner) == [ch1.id, ch2.id]
    assert status_events(keys_only) == []


def test_a_partner_hears_when_its_key_will_stop_working(world):
    """A new key with a grace period: the earlier key's partner learns when it ends."""
    client, partner, _, owner, (ch1, _) = world
    make_grant(client, partner, [ch1])
    make_key(ch1, partner=partner)
    keys.create_key(client_actor(client, owner), "client", client.id, ch1.id, 3600)

    replaced = [e for e in events_for(partner) if e["type"] == "api_key_replaced"]
    assert len(replaced) == 1
    data = replaced[0]["data"]
    assert data["partner_id"] == partner.id and data["revoked_at"] is None
    ends = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
