"""Real chromium clicks through a Partner Hub login with partner choice, and a Client Hub login."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.oauth.clients import register_hub_client
from idp.orgs.models import Membership
from tests.factories import PASSWORD, make_org, make_user
from tests.flows.live_client import authorize_url, exchange
from tests.oauth.conftest import pkce_pair, query_of

pytestmark = pytest.mark.browser


@pytest.fixture
def hubs(app, live_server):
    with app.app_context():
        for hub in ("partner", "client"):
            register_hub_client(hub, [f"{live_server.url}/demo/callback"])
        acme = make_org("partner", "Acme Messaging")
        globex = make_org("partner", "Globex Solutions")
        consultant = make_user("partner", acme, "member", email="pat@partners.example")
        db.session.add(Membership.create(consultant, globex, "owner"))
        make_user("partner", acme, "owner", email="olga@acme.example")
        bakery = make_org("client", "Blue Bakery")
        make_user("client", bakery, "owner", email="bea@bakery.example")
        db.session.commit()
        ids = {"acme": acme.id, "globex": globex.id, "bakery": bakery.id}
    return ids


def _login(page, email: str) -> None:
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_partner_hub_login_with_partner_selection(app, live_server, hubs, page):
    verifier, challenge = pkce_pair()
    page.goto(authorize_url(live_server, "partner-hub", challenge, "st-partner"))
    assert "Partner Hub" in page.title()
    _login(page, "pat@partners.example")
    page.wait_for_selector("text=Which partner do you want to work in?")
    page.click("button:has-text('Globex Solutions')")
    page.wait_for_url(f"{live_server.url}/demo/callback*")
    params = query_of(page.url)
    assert params["state"] == "st-partner"
    assert params["iss"] == live_server.url
    tokens = exchange(live_server, "partner-hub", params["code"], verifier)
    with app.app_context():
        claims = verify_jwt(tokens["access_token"], typ="at+jwt")
    assert (claims["hub"], claims["org"], claims["roles"]) == ("partner", hubs["globex"], ["owner"])

    # The next login offers the partner used last first.
    verifier, challenge = pkce_pair()
    page.goto(authorize_url(live_server, "partner-hub", challenge, "st-again"))
    first = page.locator("button[name=organization_id]").first
    assert "Globex Solutions" in first.inner_text()


def test_the_partner_picker_lets_one_sign_in_with_another_account(app, live_server, hubs, page):
    verifier, challenge = pkce_pair()
    page.goto(authorize_url(live_server, "partner-hub", challenge, "st-other"))
    _login(page, "pat@partners.example")
    page.click("button:has-text('Use another account')")
    page.wait_for_selector("text=Sign in to Partner Hub")
    _login(page, "olga@acme.example")
    page.wait_for_url(f"{live_server.url}/demo/callback*")
    params = query_of(page.url)
    assert params["state"] == "st-other"
    tokens = exchange(live_server, "partner-hub", params["code"], verifier)
    with app.app_context():
        claims = verify_jwt(tokens["id_token"], audience="partner-hub")
    assert claims["email"] == "olga@acme.example"


def test_client_hub_login(app, live_server, hubs, page):
    verifier, challenge = pkce_pair()
    page.goto(authorize_url(live_server, "client-hub", challenge, "st-client"))
    assert "Client Hub" in page.title()
    assert page.locator("a:has-text('Create a Client Hub account')").count() == 1
    _login(page, "bea@bakery.example")
    page.wait_for_url(f"{live_server.url}/demo/callback*")
    params = query_of(page.url)
    tokens = exchange(live_server, "client-hub", params["code"], verifier)
    with app.app_context():
        claims = verify_jwt(tokens["access_token"], typ="at+jwt")
    assert (claims["hub"], claims["org"]) == ("client", hubs["bakery"])


def test_a_partner_user_on_the_client_hub_is_sent_to_the_partner_hub(app, live_server, hubs, page):
    _, challenge = pkce_pair()
    page.goto(authorize_url(live_server, "client-hub", challenge, "st-wrong"))
    _login(page, "pat@partners.example")
    page.wait_for_selector("text=This account belongs to the Partner Hub")
    assert "/demo/callback" not in page.url
