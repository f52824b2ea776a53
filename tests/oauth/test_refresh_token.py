"""RFC 6749 section 6 with rotation (RFC 9700 4.14): reuse revokes the whole family."""

from __future__ import annotations

from datetime import timedelta

from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.oauth.models import RefreshToken, TokenFamily
from idp.oauth.service import revoke_user_tokens
from idp.timeutil import utcnow
from tests.oauth.conftest import refresh, tokens_for


def _login(partner_world, flow) -> dict:
    return tokens_for(flow, partner_world["owner"].email)


def _userinfo(http, access_token: str):
    return http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def test_each_use_rotates_the_refresh_token(app, partner_world, flow):
    first = _login(partner_world, flow)
    response = refresh(flow.http, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    claims = verify_jwt(second["access_token"], typ="at+jwt")
    assert claims["org"] == partner_world["acme"].id
    assert claims["roles"] == ["owner"]
    assert refresh(flow.http, second["refresh_token"]).status_code == 200


def test_reusing_a_rotated_token_revokes_the_family_and_its_access_tokens(app, partner_world, flow):
    first = _login(partner_world, flow)
    second = refresh(flow.http, first["refresh_token"]).get_json()
    assert _userinfo(flow.http, second["access_token"]).status_code == 200

    reuse = refresh(flow.http, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.get_json()["error"] == "invalid_grant"
    assert _userinfo(flow.http, second["access_token"]).status_code == 401
    assert refresh(flow.http, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    family = db.session.scalars(db.select(TokenFamily)).one()
    assert family.revoked_reason == "refresh_token_reused"


def test_refresh_tokens_are_opaque_long_and_stored_hashed(app, partner_world, flow):
    token = _login(partner_world, flow)["refresh_token"]
    assert token.count(".") == 0
    assert len(token) >= 43  # 256 bits in base64url
    stored = db.session.scalars(db.select(RefreshToken)).one()
    assert token not in (stored.token_hash, stored.id)


def test_the_family_has_an_absolute_lifetime(app, partner_world, flow):
    token = _login(partner_world, flow)["refresh_token"]
    family = db.session.scalars(db.select(TokenFamily)).one()
    lifetime = family.expires_at - family.created_at
    assert abs(lifetime.total_seconds() - app.config["IDP_REFRESH_TOKEN_TTL"]) < 5
    family.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert refresh(flow.http, token).get_json()["error"] == "invalid_grant"


def test_revoking_a_users_tokens_ends_refresh_and_access(app, partner_world, flow):
    tokens = _login(partner_world, flow)
    revoke_user_tokens(partner_world["owner"].id, "password_changed")
    db.session.commit()
    assert refresh(flow.http, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert _userinfo(flow.http, tokens["access_token"]).status_code == 401


def test_a_disabled_account_cannot_refresh(app, partner_world, flow):
    tokens = _login(partner_world, flow)
    partner_world["owner"].status = "disabled"
    db.session.commit()
    assert refresh(flow.http, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_a_removed_membership_ends_the_refresh(app, partner_world, flow):
    from idp.orgs.models import Membership

    tokens = _login(partner_world, flow)
    db.session.execute(db.delete(Membership).where(Membership.user_id == partner_world["owner"].id))
    db.session.commit()
    assert refresh(flow.http, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_a_refresh_token_is_bound_to_its_client(app, partner_world, flow):
    tokens = _login(partner_world, flow)
    response = refresh(flow.http, tokens["refresh_token"], client_id="client-hub")
    assert response.get_json()["error"] == "invalid_grant"


def test_the_scope_can_narrow_but_not_widen(app, partner_world, flow):
    tokens = _login(partner_world, flow)
    wider = refresh(flow.http, tokens["refresh_token"], scope="openid channels:write")
    assert wider.get_json()["error"] == "invalid_scope"
    narrower = refresh(flow.http, tokens["refresh_token"], scope="openid")
    assert narrower.status_code == 200
    assert narrower.get_json()["scope"] == "openid"


def test_a_missing_refresh_token_is_an_invalid_request(app, hub_clients, flow):
    response = flow.http.post(
        "/oauth/token", data={"grant_type": "refresh_token", "client_id": "partner-hub"}
    )
    assert response.get_json()["error"] == "invalid_request"
