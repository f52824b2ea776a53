"""Two first settings of a partner's webhook URL racing on PostgreSQL (a double click)."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from idp.accounts.models import User
from idp.extensions import db
from idp.webhooks import urls
from idp.webhooks.models import WebhookEndpoint
from idp.webhooks.service import set_endpoint
from policies.actor import Actor
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


@pytest.mark.postgres
def test_the_owners_account_is_not_locked_while_the_urls_host_is_looked_up(
    app, app_ctx, monkeypatch
):
    """In production setting a URL resolves its host, which may take seconds: meanwhile the
    owner's logins and partner switches (which write the account's row) must not wait."""
    partner = make_org("partner", "Acme")
    owner = make_user("partner", partner, "owner")
    db.session.commit()
    partner_id, owner_id = partner.id, owner.id
    monkeypatch.setitem(app.config, "IDP_ENV", "production")
    locked_during_lookup = []

    def lookup(host, port, *args, **kwargs):
        with db.engine.connect() as other:
            try:
                other.execute(
                    sa.select(User.id).where(User.id == owner_id).with_for_update(nowait=True)
                )
                locked_during_lookup.append(False)
            except OperationalError:
                locked_during_lookup.append(True)
            other.rollback()
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port or 443))]

    monkeypatch.setattr(urls.socket, "getaddrinfo", lookup)
    actor = Actor(
        hub="partner", organization_id=partner_id, roles=frozenset({"owner"}), user_id=owner_id
    )

    set_endpoint(actor, partner_id, "https://hooks.partner.example/idp")

    assert locked_during_lookup == [False]
