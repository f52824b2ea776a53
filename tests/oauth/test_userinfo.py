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


def test_a_form_body_token_works_on_post_as_rfc_6750_allows(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    response = flow.http.post("/oauth/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200
    assert response.get_json()["sub"] == partner_world["consultant"].id


def test_a_token_in_both_header_and_body_is_an_invalid_request(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    response = flow.http.post(
        "/oauth/userinfo",
        data={"access_token": tokens["access_token"]},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_a_token_in_the_query_string_is_not_accepted(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    response = flow.http.get(f"/oauth/userinfo?access_token={tokens['access_token']}")
    assert response.status_code == 401
