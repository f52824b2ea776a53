"""RFC 7009 token revocation."""

from __future__ import annotations

from idp.extensions import db
from idp.oauth.models import TokenFamily
from tests.oauth.conftest import refresh, tokens_for


def _revoke(http, token, client_id="partner-hub", **extra):
    return http.post("/oauth/revoke", data={"token": token, "client_id": client_id, **extra})


def test_revoking_the_refresh_token_ends_the_login(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = _revoke(flow.http, tokens["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    assert refresh(flow.http, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    userinfo = flow.http.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401


def test_revoking_the_access_token_revokes_its_family(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    assert _revoke(flow.http, tokens["access_token"]).status_code == 200
    family = db.session.scalars(db.select(TokenFamily)).one()
    assert family.revoked_at is not None


def test_an_unknown_token_is_answered_with_200(app, hub_clients, flow):
    assert _revoke(flow.http, "unknown-token").status_code == 200


def test_another_clients_token_is_refused(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = _revoke(flow.http, tokens["refresh_token"], client_id="client-hub")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert db.session.scalars(db.select(TokenFamily)).one().revoked_at is None


def test_a_missing_token_is_invalid_request(app, hub_clients, flow):
    response = flow.http.post("/oauth/revoke", data={"client_id": "partner-hub"})
    assert response.get_json()["error"] == "invalid_request"


def test_an_unknown_hint_is_unsupported_token_type(app, hub_clients, flow):
    response = _revoke(flow.http, "x", token_type_hint="id_token")
    assert response.get_json()["error"] == "unsupported_token_type"


def test_an_unknown_client_is_invalid_client(app, hub_clients, flow):
    response = _revoke(flow.http, "x", client_id="nobody")
    assert response.get_json()["error"] == "invalid_client"
