"""RFC 6749 section 4.1 + RFC 7636 + RFC 9207: the authorization code grant."""

from __future__ import annotations

from idp.extensions import db
from idp.keys.service import verify_jwt
from tests.oauth.conftest import HUB_REDIRECT, query_of


def test_a_partner_user_gets_a_code_with_state_and_iss_and_a_role_scoped_token(
    app, partner_world, flow
):
    owner = partner_world["owner"]
    code = flow.code_for(owner.email)
    response = flow.exchange(code)
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] <= 900
    claims = verify_jwt(body["access_token"], typ="at+jwt")
    assert claims["sub"] == owner.id
    assert claims["hub"] == "partner"
    assert claims["org"] == partner_world["acme"].id
    assert claims["roles"] == ["owner"]
    assert claims["client_id"] == "partner-hub"
    id_token = verify_jwt(body["id_token"], audience="partner-hub")
    assert id_token["nonce"] == "nonce-abc"
    assert id_token["email"] == owner.email
    assert body["refresh_token"]


def test_the_redirect_carries_state_and_issuer(app, partner_world, flow):
    response = flow.login(partner_world["owner"].email)
    response = flow.http.get(response.headers["Location"])
    location = response.headers["Location"]
    assert location.startswith(HUB_REDIRECT + "?")
    params = query_of(location)
    assert params["state"] == "state-123"
    assert params["iss"] == app.config["IDP_ISSUER"]


def test_a_code_works_once_and_a_replay_revokes_what_it_issued(app, partner_world, flow):
    code = flow.code_for(partner_world["owner"].email)
    first = flow.exchange(code)
    assert first.status_code == 200
    replay = flow.exchange(code)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    refreshed = flow.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.get_json()["refresh_token"],
            "client_id": "partner-hub",
        },
    )
    assert refreshed.get_json()["error"] == "invalid_grant"
    db.session.remove()
