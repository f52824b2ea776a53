"""Key generations racing on PostgreSQL: the channel ends with exactly one working key."""

from __future__ import annotations

import threading

import pytest
import requests

from idp.extensions import db
from tests.factories import bearer_for, make_channel, make_org, make_user

RACERS = 6


@pytest.mark.postgres
def test_racing_generations_leave_one_working_key(app, live_server):
    with app.app_context():
        shop = make_org("client")
        channel_id = make_channel(shop).id
        auth = bearer_for(make_user("client", shop, "owner"), shop)
        url = f"{live_server.url}/v1/clients/{shop.id}/channels/{channel_id}/api-keys"
        db.session.remove()
    start = threading.Barrier(RACERS)
    created: list[str] = []

    def generate():
        start.wait()
        response = requests.post(url, headers=auth, timeout=30)
        assert response.status_code == 201, response.text
        created.append(response.json()["api_key"])

    threads = [threading.Thread(target=generate) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(created) == RACERS
    check = f"{live_server.url}/v1/api-keys/check"
    working = [k for k in created if requests.get(check, headers={"D360-API-KEY": k}).ok]
    assert len(working) == 1
    listed = requests.get(url, headers=auth, timeout=10).json()
    assert sum(k["revoked_at"] is None for k in listed) == 1


@pytest.mark.postgres
def test_racing_approvals_leave_one_grant(app):
    from idp.consent import service
    from idp.consent.models import ConsentGrant
    from tests.consent.factories import client_actor

    with app.app_context():
        shop, partner = make_org("client"), make_org("partner")
        channel_id = make_channel(shop).id
        actor = client_actor(shop, make_user("client", shop, "owner"))
        partner_id = partner.id
        db.session.commit()
        db.session.remove()
    start = threading.Barrier(RACERS)
    outcomes: list[str] = []

    def approve():
        with app.app_context():
            start.wait()
            try:
                service.approve_consent(
                    actor,
                    partner_id=partner_id,
                    oauth_client_id=None,
                    scope="api_keys:manage",
                    channel_ids=[channel_id],
                )
                outcomes.append("ok")
            except service.GrantChanged:
                outcomes.append("conflict")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=approve) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == RACERS and "ok" in outcomes
    with app.app_context():
        assert db.session.query(ConsentGrant).filter_by(partner_id=partner_id).count() == 1
        db.session.remove()
