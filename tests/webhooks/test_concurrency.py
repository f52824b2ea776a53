"""Two first settings of a partner's webhook URL racing on PostgreSQL (a double click)."""

from __future__ import annotations

import threading

import pytest
import requests

from idp.extensions import db
from idp.webhooks.models import WebhookEndpoint
from tests.factories import bearer_for, make_org, make_user


@pytest.mark.postgres
def test_racing_first_urls_leave_one_endpoint_and_one_secret(app, live_server):
    with app.app_context():
        partner = make_org("partner", "Racer")
        owner = make_user("partner", partner, "owner")
        db.session.commit()
        partner_id, bearer = partner.id, bearer_for(owner, partner)
        db.session.remove()
    start = threading.Barrier(6)
    answers: list[requests.Response] = []

    def put():
        start.wait()
        answers.append(
            requests.put(
                f"{live_server.url}/v1/partners/{partner_id}/webhook",
                json={"url": "https://hooks.partner.example/idp"},
                headers=bearer,
                timeout=30,
            )
        )

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    secrets = [a.json()["secret"] for a in answers if a.status_code == 200 and a.json()["secret"]]
    assert len(secrets) == 1  # shown once, to the request that created the endpoint
    with app.app_context():
        assert db.session.query(WebhookEndpoint).filter_by(partner_id=partner_id).count() == 1
