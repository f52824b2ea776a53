"""End to end over HTTP: a partner's server lists, opens a number, and gets a signed event."""

from __future__ import annotations

import requests
from standardwebhooks import Webhook

from idp.demo import load_demo
from idp.demo.oauth import (
    PARTNER_SERVICE_CLIENT_ID,
    PARTNER_SERVICE_SECRET,
    PLATFORM_CLIENT_ID,
    PLATFORM_CLIENT_SECRET,
)
from idp.extensions import db
from idp.outbox import worker
from idp.webhooks.service import endpoint_for, rotate_secret
from policies.actor import Actor


def _token(base: str, client_id: str, secret: str, scope: str) -> dict:
    res = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
        timeout=10,
    )
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def test_a_partner_server_sees_its_numbers_and_hears_a_status_change(app, live_server, receiver):
    base = live_server.url
    with app.app_context():
        data = load_demo()
        acme = next(p for p in data["partners"] if p["name"] == "Acme Messaging")
        alice = next(u for u in data["users"] if u["email"] == "owner@acme.example")
        owner = Actor(
            hub="partner",
            organization_id=acme["id"],
            roles=frozenset({"owner"}),
            user_id=alice["id"],
        )
        # Point Acme's webhook at this test's receiver and learn a fresh secret.
        endpoint_for(acme["id"]).url = receiver.url
        db.session.commit()
        _, secret = rotate_secret(owner, acme["id"])
        worker.run_once()  # deliver what the demo queued
        db.session.remove()
    receiver.requests.clear()

    acme_api = _token(
        base, PARTNER_SERVICE_CLIENT_ID, PARTNER_SERVICE_SECRET, "clients:read channels:read"
    )
    clients = requests.get(
        f"{base}/v1/partners/{acme['id']}/clients", headers=acme_api, timeout=10
    ).json()["items"]
    assert "Blue Bakery" in {c["name"] for c in clients}
    channels = requests.get(
        f"{base}/v1/partners/{acme['id']}/channels",
        params={"status": "running"},
        headers=acme_api,
        timeout=10,
    ).json()["items"]
    number = channels[0]

    platform = _token(base, PLATFORM_CLIENT_ID, PLATFORM_CLIENT_SECRET, "channels:write")
    res = requests.post(
        f"{base}/v1/channels/{number['id']}/status",
        json={"status": "live", "reason": "billing started"},
        headers=platform,
        timeout=10,
    )
    assert res.status_code == 200, res.text
    with app.app_context():
        worker.run_once()
        db.session.remove()

    [got] = receiver.requests
    event = Webhook(secret).verify(got.body, got.headers)
    assert event["type"] == "channel_status_changed"
    assert event["data"]["channel_id"] == number["id"]
    assert event["data"]["status"] == "live"

    detail = requests.get(
        f"{base}/v1/partners/{acme['id']}/channels/{number['id']}", headers=acme_api, timeout=10
    ).json()
    assert detail["channel"]["status"] == "live"
    assert detail["history"][-1]["reason"] == "billing started"
