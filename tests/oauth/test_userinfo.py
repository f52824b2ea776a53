"""OpenID Connect Core 5.3 userinfo, with RFC 6750 bearer errors."""

from __future__ import annotations

from tests.factories import bearer_for
from tests.oauth.conftest import tokens_for


def test_userinfo_names_the_user_hub_organization_and_memberships(app, partner_world, flow):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = tokens_for(flow, consultant.email, acme.id)
    response = flow.http.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["sub"] == consultant.id
    assert body["email"] == consultant.email
    assert body["email_verified"] is True
    assert (body["hub"], body["org"]) == ("partner", acme.id)
    roles = {m["id"]: m["role"] for m in body["memberships"]}
    assert roles == {acme.id: "member", globex.id: "owner"}


def test_without_a_token_the_answer_is_401_with_a_challenge(app, browser):
    response = browser.get("/oauth/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_invalid_token(app, browser):
    response = browser.get("/oauth/userinfo", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_without_openid_scope_is_insufficient_scope(app, partner_world, browser):
    headers = bearer_for(partner_world["owner"], partner_world["acme"], scope="channels:read")
    response = browser.get("/oauth/userinfo", headers=headers)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
