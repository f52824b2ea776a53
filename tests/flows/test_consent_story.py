"""The consent story end to end, over real HTTP, a real browser and a real SMTP server.

A partner creates a consent link; a new client signs up through it in
chromium (verifying its address by email), ticks two of its three numbers and
approves; the partner exchanges the code and learns the grant, generates a key
for a granted number (the third is refused), and the gateway accepts the key.
The client revokes the partner on its Connected partners page: the key is
refused at once and the partner can no longer generate.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.accounts.models import User
from idp.channels.models import Channel
from idp.extensions import db
from idp.orgs.models import Organization
from tests.accounts.helpers import deliver_mail
from tests.factories import bearer_for, make_channel, make_org, make_user
from tests.fixtures.smtp import first_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIENT_EMAIL = "owner@new-bakery.example"
CLIENT_PASSWORD = "a-long-client-passphrase-2026"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Partner:
    """The partner's server, talking to the service over HTTP only."""

    def __init__(self, base: str, partner_id: str, owner_auth: dict):
        self.base, self.partner_id = base, partner_id
        self.redirect_uri = f"{base}/partner-app/consent-callback"
        created = requests.post(
            f"{base}/v1/partners/{partner_id}/oauth-clients",
            json={"name": "Acme onboarding", "redirect_uris": [self.redirect_uri]},
            headers=owner_auth,
            timeout=10,
        )
        assert created.status_code == 201, created.text
        self.client_id = created.json()["client_id"]
        self.secret = created.json()["client_secret"]
        self.verifier, self.challenge = pkce_pair()

    @classmethod
    def acme(cls, app, base: str) -> Partner:
        """The partner Acme Messaging, its owner's token, and its server's client."""
        with app.app_context():
            acme = make_org("partner", "Acme Messaging")
            owner_auth = bearer_for(make_user("partner", acme, "owner"), acme)
            acme_id = acme.id
            db.session.remove()
        return cls(base, acme_id, owner_auth)

    def token(self, **form) -> requests.Response:
        return requests.post(
            f"{self.base}/oauth/token", data=form, auth=(self.client_id, self.secret), timeout=10
        )

    def exchange(self, code: str) -> requests.Response:
        """The code exchange of the partner's server (its secret and PKCE verifier)."""
        return self.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=self.verifier,
        )

    def api(self) -> dict:
        """A client-credentials access token for the Partner API."""
        response = self.token(grant_type="client_credentials")
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def consent_link(self, email: str) -> str:
        response = requests.post(
            f"{self.base}/v1/partners/{self.partner_id}/consent-links",
            json={
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "state": "acme-state-42",
                "email": email,
                "code_challenge": self.challenge,
            },
            headers=self.api(),
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()["url"]

    def generate_key(self, channel_id: str) -> requests.Response:
        return requests.post(
            f"{self.base}/v1/partners/{self.partner_id}/channels/{channel_id}/api-keys",
            headers=self.api(),
            timeout=10,
        )


def gateway(base: str, key: str) -> requests.Response:
    return requests.get(f"{base}/v1/api-keys/check", headers={"D360-API-KEY": key}, timeout=10)


def test_a_client_signs_up_through_a_link_approves_and_later_revokes(
    app, live_server, page, smtp_server
):
    mailbox, smtp_url = smtp_server
    base = live_server.url
    partner = Partner.acme(app, base)
    acme_id = partner.partner_id

    # 1. The partner emails its client a short link; the client opens it and signs up.
    link = partner.consent_link(CLIENT_EMAIL)
    assert re.fullmatch(re.escape(base) + r"/c/lnk_[0-9a-z]+", link)
    page.goto(link)
    assert "Connect Acme Messaging" in page.content()
    assert page.input_value("#email") == CLIENT_EMAIL
    page.fill("#password", CLIENT_PASSWORD)
    page.fill("#business_name", "New Bakery")
    page.click("button:has-text('Create account')")
    page.wait_for_selector("text=Check your email")
    assert deliver_mail(app, smtp_url)["sent"] >= 1
    (message,) = mailbox.wait_for(CLIENT_EMAIL)
    page.goto(first_link(message))
    page.fill("#password", CLIENT_PASSWORD)  # the link and the password chosen with it
    page.click("button:has-text('Create my account')")
    page.wait_for_selector("text=Acme Messaging wants to connect to New Bakery")

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == CLIENT_EMAIL))
        shop = db.session.get(Organization, user.memberships[0].organization_id)
        assert shop.onboarding_partner_id == acme_id
        # The platform registers the business's three numbers.
        channels = [make_channel(shop, "live").id for _ in range(3)]
        shop_id = shop.id
        db.session.commit()
        db.session.remove()

    # 2. The consent screen: partner, plain words, one box per number; tick two, approve.
    page.reload()
    assert "generate and manage API keys" in page.content()
    boxes = page.locator("input[type=checkbox][name=channels]")
    assert boxes.count() == 3
    page.check(f"input[value='{channels[0]}']")
    page.check(f"input[value='{channels[1]}']")
    with page.expect_navigation(url=re.compile(re.escape(partner.redirect_uri) + r"\?")):
        page.click("button:has-text('Allow')")
    query = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert query["state"] == "acme-state-42" and query["iss"] == base and query["code"]

    # 3. The partner's server exchanges the code and learns the grant.
    exchanged = partner.exchange(query["code"])
    assert exchanged.status_code == 200, exchanged.text
    grant = exchanged.json()["grant"]
    assert grant["client"] == shop_id
    assert sorted(grant["channels"]) == sorted(channels[:2])
    assert grant["scope"] == "api_keys:manage channels:read"

    # 4. A key for a granted number works at the gateway; the ungranted number is refused.
    created = partner.generate_key(channels[0])
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    refused = partner.generate_key(channels[2])
    assert refused.status_code == 403 and refused.json()["code"] == "grant_required"
    checked = gateway(base, key)
    assert checked.status_code == 200
    assert checked.json() == {
        "channel_id": channels[0],
        "client_id": shop_id,
        "partner_id": acme_id,
    }
    assert checked.headers["X-Channel-Id"] == channels[0]

    # 5. The client revokes Acme on its Connected partners page.
    page.goto(f"{base}/client/connected-partners")
    assert page.locator("section.grant h2").inner_text() == "Acme Messaging"
    page.click("button:has-text('Revoke Acme Messaging')")
    page.wait_for_selector("text=Acme Messaging can no longer act on your numbers.")
    assert "No partner can act on your numbers." in page.content()

    # 6. At once: the key is refused and the partner cannot generate another.
    assert gateway(base, key).status_code == 401
    assert partner.generate_key(channels[0]).status_code == 404
    with app.app_context():
        assert db.session.get(Channel, channels[0]).status == "live"
        db.session.remove()
