"""RFC 6749 section 4.4: partner and platform services get machine tokens."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.timeutil import utcnow
from tests.factories import make_org
from tests.oauth.conftest import basic, make_partner_client, make_platform_client


def _token(http, client_id, secret, **data):
    return http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **data},
        headers=basic(client_id, secret),
    )


@pytest.fixture
def partner_client(app_ctx):
    partner = make_org("partner", "Acme")
    client, secret = make_partner_client(partner)
    return partner, client, secret


def test_a_partner_client_gets_a_partner_token_with_its_own_scopes(browser, partner_client):
    partner, client, secret = partner_client
    response = _token(browser, client.client_id, secret)
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert "refresh_token" not in body
    assert response.headers["Cache-Control"] == "no-store"
    claims = verify_jwt(body["access_token"], typ="at+jwt")
    assert claims["hub"] == "partner"
    assert claims["org"] == partner.id
    assert claims["sub"] == client.client_id
    assert claims["roles"] == []
    assert set(claims["scope"].split()) == {"channels:read", "clients:read"}


def test_a_narrower_scope_can_be_asked(browser, partner_client):
    _, client, secret = partner_client
    body = _token(browser, client.client_id, secret, scope="channels:read").get_json()
    assert verify_jwt(body["access_token"], typ="at+jwt")["scope"] == "channels:read"


def test_a_scope_the_client_was_not_given_is_refused(browser, partner_client):
    _, client, secret = partner_client
    response = _token(browser, client.client_id, secret, scope="channels:read api_keys:create")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_client_secret_post_works_too(browser, partner_client):
    _, client, secret = partner_client
    response = browser.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200


def test_a_wrong_secret_is_invalid_client(browser, partner_client):
    _, client, _ = partner_client
    response = _token(browser, client.client_id, "wrong")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_a_deleted_client_is_invalid_client(browser, partner_client):
    _, client, secret = partner_client
    client.deleted_at = utcnow()
    db.session.commit()
    assert _token(browser, client.client_id, secret).get_json()["error"] == "invalid_client"


def test_a_public_hub_client_cannot_use_client_credentials(browser, hub_clients):
    response = browser.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "partner-hub"}
    )
    assert response.get_json()["error"] in {"invalid_client", "unauthorized_client"}


def test_the_platform_client_gets_support_channel_scopes(browser, app_ctx):
    support = make_org("support", "Support")
    client, secret = make_platform_client(support)
    body = _token(browser, client.client_id, secret).get_json()
    claims = verify_jwt(body["access_token"], typ="at+jwt")
    assert (claims["hub"], claims["org"]) == ("support", support.id)
    assert set(claims["scope"].split()) == {"channels:read", "channels:write"}


def test_machine_tokens_of_one_client_share_a_family_and_issuing_writes_none(
    browser, partner_client
):
    from idp.oauth.models import TokenFamily

    _, client, secret = partner_client
    first = verify_jwt(_token(browser, client.client_id, secret).get_json()["access_token"])
    families = db.session.scalar(db.select(db.func.count()).select_from(TokenFamily))
    second = verify_jwt(_token(browser, client.client_id, secret).get_json()["access_token"])
    assert first["jti"] != second["jti"]
    assert first["sid"] == second["sid"]
    assert db.session.scalar(db.select(db.func.count()).select_from(TokenFamily)) == families


def test_revoking_one_machine_token_ends_the_clients_tokens_and_a_new_one_works(
    browser, partner_client
):
    from tests.oauth.conftest import introspect

    _, client, secret = partner_client
    first = _token(browser, client.client_id, secret).get_json()["access_token"]
    second = _token(browser, client.client_id, secret).get_json()["access_token"]
    revoked = browser.post(
        "/oauth/revoke", data={"token": first}, headers=basic(client.client_id, secret)
    )
    assert revoked.status_code == 200
    assert introspect(browser, first, client.client_id, secret).get_json()["active"] is False
    assert introspect(browser, second, client.client_id, secret).get_json()["active"] is False
    fresh = _token(browser, client.client_id, secret).get_json()["access_token"]
    assert introspect(browser, fresh, client.client_id, secret).get_json()["active"] is True
