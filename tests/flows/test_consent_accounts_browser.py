"""The consent screen in chromium for a person signed in as the wrong client account.

The screen names the account it speaks for, and offers "Use another account"
(which answers the same authorization request as the account signed in next)
and Sign out, like the other signed-in pages.
"""

from __future__ import annotations

import pytest

from idp.extensions import db
from tests.factories import PASSWORD, make_channel, make_org, make_user
from tests.flows.live_client import authorize_url
from tests.flows.test_consent_story import Partner
from tests.oauth.conftest import query_of

pytestmark = pytest.mark.browser

ASKED = "api_keys:manage channels:read"


@pytest.fixture
def businesses(app):
    with app.app_context():
        bakery = make_org("client", "Blue Bakery")
        make_user("client", bakery, "owner", email="bea@bakery.example")
        cafe = make_org("client", "Corner Cafe")
        make_user("client", cafe, "owner", email="carl@cafe.example")
        ids = {"cafe": cafe.id, "cafe_number": make_channel(cafe, "live").id}
        db.session.commit()
        db.session.remove()
    return ids


def _sign_in(page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _open_consent(page, live_server, partner: Partner, state: str) -> None:
    page.goto(
        authorize_url(
            live_server,
            partner.client_id,
            partner.challenge,
            state,
            redirect_uri=partner.redirect_uri,
            scope=ASKED,
        )
    )


def test_use_another_account_answers_the_same_request(app, live_server, businesses, page):
    partner = Partner.acme(app, live_server.url)
    _open_consent(page, live_server, partner, "acme-state-7")
    _sign_in(page, "bea@bakery.example")
    page.wait_for_selector("text=Acme Messaging wants to connect to Blue Bakery")
    assert "Signed in as bea@bakery.example" in page.inner_text("main")

    page.get_by_role("button", name="Use another account").click()
    page.wait_for_selector("text=Sign in to Client Hub")
    _sign_in(page, "carl@cafe.example")
    page.wait_for_selector("text=Acme Messaging wants to connect to Corner Cafe")
    page.check(f"input[value='{businesses['cafe_number']}']")
    with page.expect_navigation(url=f"{partner.redirect_uri}?*"):
        page.get_by_role("button", name="Allow").click()
    params = query_of(page.url)
    assert params["state"] == "acme-state-7"
    exchanged = partner.exchange(params["code"])
    assert exchanged.status_code == 200, exchanged.text
    grant = exchanged.json()["grant"]
    assert (grant["client"], grant["channels"]) == (businesses["cafe"], [businesses["cafe_number"]])


def test_sign_out_from_the_consent_screen(app, live_server, businesses, page):
    partner = Partner.acme(app, live_server.url)
    _open_consent(page, live_server, partner, "acme-state-8")
    _sign_in(page, "bea@bakery.example")
    page.wait_for_selector("text=Acme Messaging wants to connect to Blue Bakery")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("text=You are signed out.")
    page.goto(f"{live_server.url}/client/connected-partners")
    page.wait_for_selector("text=Sign in to Client Hub")
