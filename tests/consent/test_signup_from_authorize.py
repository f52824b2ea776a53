"""A client signing up from the login page of a partner's own authorization request.

The partner may send the browser straight to ``/oauth/authorize`` instead of
a consent link; a business without an account signs up from the login page
it lands on, and its new organization records that partner as the one that
onboarded it, exactly as through a consent link.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from idp.extensions import db
from idp.orgs.models import Organization
from tests.accounts.helpers import csrf_of, deliver_mail, received_link
from tests.consent.factories import CONSENT_REDIRECT, make_consent_client
from tests.factories import make_org
from tests.oauth.conftest import pkce_pair

EMAIL = "owner@fresh-bakery.example"
PASSWORD = "a-long-client-passphrase-2026"


def _signup_link(html: str) -> str:
    match = re.search(r'<a href="([^"]+)">Create a Client Hub account</a>', html)
    assert match, "the login page offers no sign-up"
    return match.group(1).replace("&amp;", "&")


def test_signing_up_from_the_login_page_records_the_partner_and_returns_to_consent(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    with app.app_context():
        partner = make_org("partner", "Acme Messaging")
        consent_app = make_consent_client(partner)
        partner_id, client_id = partner.id, consent_app.client_id
        db.session.remove()
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CONSENT_REDIRECT,
        "scope": "api_keys:manage channels:read",
        "state": "acme-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    to_login = client.get("/oauth/authorize", query_string=params)
    login_page = client.get(to_login.headers["Location"])
    signup_url = _signup_link(login_page.text)

    form = client.get(signup_url)
    assert form.status_code == 200 and "Acme Messaging" in form.text
    answer = client.post(
        signup_url,
        data={
            "csrf_token": csrf_of(form.text),
            "email": EMAIL,
            "password": PASSWORD,
            "business_name": "Fresh Bakery",
        },
    )
    assert answer.status_code == 200 and "Check your email" in answer.text
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, EMAIL)
    page = client.get(link)
    done = client.post(
        "/signup/verify",
        data={
            "csrf_token": csrf_of(page.text),
            "token": link.split("=", 1)[1],
            "password": PASSWORD,
        },
    )
    with app.app_context():
        shop = db.session.scalar(sa.select(Organization).where(Organization.name == "Fresh Bakery"))
        assert shop.onboarding_partner_id == partner_id
        shop_name = shop.name
        db.session.remove()
    # The new owner is back in the partner's request: the consent screen names both.
    assert done.status_code == 303
    screen = client.get(done.headers["Location"])
    assert screen.status_code == 200, screen.text
    assert "Acme Messaging" in screen.text and shop_name in screen.text
