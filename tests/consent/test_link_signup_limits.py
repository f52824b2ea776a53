"""Signing up through a consent link counts against the same limits as the sign-up page."""

import pytest

from idp.consent.links import create_consent_link
from idp.extensions import db
from tests.accounts.helpers import csrf_of, queued_link_secrets, submit_form
from tests.accounts.test_rate_limits import _limits_on
from tests.consent.factories import CONSENT_REDIRECT, make_consent_client, partner_actor
from tests.factories import make_org


@pytest.fixture
def link_id(app):
    with app.app_context():
        partner = make_org("partner")
        consent_app = make_consent_client(partner)
        link = create_consent_link(
            partner_actor(partner),
            partner.id,
            {
                "client_id": consent_app.client_id,
                "redirect_uri": CONSENT_REDIRECT,
                "state": "s",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
                "expires_in": 600,
            },
        )
        link_id = link.id
        db.session.remove()
    return link_id


def test_a_mailbox_cannot_be_flooded_through_a_consent_link(database_url, redis_prefix, link_id):
    with _limits_on(database_url, redis_prefix) as client:
        url = f"/c/{link_id}"
        statuses = []
        for _ in range(3):
            page = client.get(url).get_data(as_text=True)
            form = {
                "csrf_token": csrf_of(page),
                "email": "target@shop.example",
                "password": "a long enough passphrase",
                "business_name": "Shop",
            }
            statuses.append(client.post(url, data=form).status_code)
        assert statuses == [200, 200, 429]


def test_a_link_takes_a_passphrase_as_long_as_the_sign_up_page_does(app, client, link_id):
    """The password rules allow 1,024 characters; the link's form must not refuse fewer."""
    passphrase = "correct horse battery staple " * 30  # 870 characters
    answer = submit_form(
        client,
        f"/c/{link_id}",
        email="long.passphrase@shop.example",
        password=passphrase,
        business_name="Shop",
    )
    assert answer.status_code == 200
    with app.app_context():
        assert queued_link_secrets("long.passphrase@shop.example")  # the verification link
