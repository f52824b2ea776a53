"""The pluggable authorization step: handlers by client kind, approval, denial, token extras."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.oauth import authorize
from idp.oauth.issuance import TOKEN_RESPONSE_EXTRAS
from tests.factories import make_org, make_user
from tests.oauth.conftest import PARTNER_REDIRECT, Flow, basic, make_partner_client, query_of


@pytest.fixture
def partner_app(app_ctx, hub_clients):
    acme = make_org("partner", "Acme")
    bakery = make_org("client", "Bakery")
    baker = make_user("client", bakery, "owner")
    client, secret = make_partner_client(
        acme, redirect_uris=[PARTNER_REDIRECT], scope="channels:read"
    )
    db.session.commit()
    return {"acme": acme, "bakery": bakery, "baker": baker, "client": client, "secret": secret}


@pytest.fixture
def approving(monkeypatch):
    """A stand-in partner handler that approves at once with a context."""

    def handler(authz):
        assert authz.client.kind == "partner"
        assert authz.user is not None
        return authorize.issue_authorization_response(
            authz, authz.user, authz.user.memberships[0].organization_id, context={"grant_id": "g1"}
        )

    monkeypatch.setitem(authorize.AUTHORIZATION_HANDLERS, "partner", handler)
    extra = lambda code: {"grant": code.context}  # noqa: E731
    TOKEN_RESPONSE_EXTRAS.append(extra)
    yield
    TOKEN_RESPONSE_EXTRAS.remove(extra)


def _flow(browser, partner_app) -> Flow:
    return Flow(
        browser,
        client_id=partner_app["client"].client_id,
        redirect_uri=PARTNER_REDIRECT,
        scope="channels:read",
        nonce=None,
    )


def test_a_partner_app_login_is_a_client_hub_login(app, browser, partner_app):
    flow = _flow(browser, partner_app)
    page = browser.get(flow.authorize().headers["Location"])
    assert "Sign in to Client Hub" in page.text
    assert "Create a Client Hub account" in page.text
    assert partner_app["client"].name in page.text


def test_approval_issues_a_code_whose_exchange_carries_the_extras(
    app, browser, partner_app, approving
):
    flow = _flow(browser, partner_app)
    response = flow.login(partner_app["baker"].email)
    response = browser.get(response.headers["Location"])
    params = query_of(response.headers["Location"])
    assert params["state"] == "state-123"
    assert params["iss"] == app.config["IDP_ISSUER"]
    exchanged = browser.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": PARTNER_REDIRECT,
            "code_verifier": flow.verifier,
        },
        headers=basic(partner_app["client"].client_id, partner_app["secret"]),
    )
    assert exchanged.status_code == 200, exchanged.text
    body = exchanged.get_json()
    assert body["grant"] == {"grant_id": "g1"}
    assert "refresh_token" not in body
    claims = verify_jwt(body["access_token"], typ="at+jwt")
    # The partner's server gets a token of its partner, never one of the client's user.
    assert (claims["hub"], claims["org"], claims["sub"]) == (
        "partner",
        partner_app["acme"].id,
        partner_app["client"].client_id,
    )


def test_a_confidential_client_must_authenticate_at_the_exchange(
    app, browser, partner_app, approving
):
    flow = _flow(browser, partner_app)
    response = flow.login(partner_app["baker"].email)
    code = query_of(browser.get(response.headers["Location"]).headers["Location"])["code"]
    response = flow.exchange(code)
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"


def test_denial_redirects_with_access_denied_state_and_iss(app, browser, partner_app, monkeypatch):
    monkeypatch.setitem(
        authorize.AUTHORIZATION_HANDLERS,
        "partner",
        lambda authz: authorize.deny_authorization(authz),
    )
    flow = _flow(browser, partner_app)
    response = flow.login(partner_app["baker"].email)
    params = query_of(browser.get(response.headers["Location"]).headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert params["iss"] == app.config["IDP_ISSUER"]
