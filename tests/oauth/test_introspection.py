"""RFC 7662 introspection: confidential callers; inactive for anything not live."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from idp.extensions import db
from idp.oauth.models import TokenFamily
from idp.timeutil import utcnow
from tests.factories import make_org
from tests.oauth.conftest import (
    basic,
    introspect,
    make_partner_client,
    make_platform_client,
    refresh,
    tokens_for,
)


@pytest.fixture
def services(app_ctx, partner_world):
    support = make_org("support", "Support")
    platform, platform_secret = make_platform_client(support)
    partner, partner_secret = make_partner_client(partner_world["acme"])
    return {
        "platform": (platform.client_id, platform_secret),
        "partner": (partner.client_id, partner_secret),
    }


def test_a_live_access_token_is_active_with_its_claims(app, partner_world, services, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    body = introspect(flow.http, tokens["access_token"], *services["platform"]).get_json()
    assert body["active"] is True
    assert body["sub"] == partner_world["owner"].id
    assert body["client_id"] == "partner-hub"
    assert body["org"] == partner_world["acme"].id
    assert body["hub"] == "partner"
    assert body["roles"] == ["owner"]
    assert body["exp"] > time.time()


def test_a_live_refresh_token_is_active(app, partner_world, services, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    body = introspect(
        flow.http, tokens["refresh_token"], *services["platform"], token_type_hint="refresh_token"
    ).get_json()
    assert body["active"] is True


def test_a_revoked_token_is_inactive_at_once(app, partner_world, services, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    flow.http.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": "partner-hub"}
    )
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert introspect(flow.http, token, *services["platform"]).get_json() == {"active": False}


def test_an_expired_token_is_inactive(app, partner_world, services, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    db.session.execute(db.update(TokenFamily).values(expires_at=utcnow()))
    db.session.commit()
    body = introspect(flow.http, tokens["access_token"], *services["platform"]).get_json()
    assert body == {"active": False}


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 9000])
def test_a_malformed_token_is_inactive(app, services, flow, token):
    response = introspect(flow.http, token, *services["platform"])
    if token == "":
        assert response.get_json() in ({"active": False}, {"error": "invalid_request"})
    else:
        assert response.get_json() == {"active": False}


def test_a_token_signed_by_someone_else_is_inactive(app, partner_world, services, flow):
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    forged = jwt.encode(
        {
            "iss": app.config["IDP_ISSUER"],
            "sub": "x",
            "aud": app.config["IDP_ISSUER"],
            "iat": now,
            "exp": now + 60,
            "scope": "openid",
        },
        foreign_key,
        algorithm="ES256",
        headers={"kid": "sk_foreign", "typ": "at+jwt"},
    )
    assert introspect(flow.http, forged, *services["platform"]).get_json() == {"active": False}


def test_a_partner_client_only_sees_its_own_tokens(app, partner_world, services, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    body = introspect(flow.http, tokens["access_token"], *services["partner"]).get_json()
    assert body == {"active": False}
    own = flow.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(*services["partner"]),
    ).get_json()
    assert introspect(flow.http, own["access_token"], *services["partner"]).get_json()["active"]


def test_public_clients_cannot_introspect(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = flow.http.post(
        "/oauth/introspect", data={"token": tokens["access_token"], "client_id": "partner-hub"}
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_a_wrong_secret_is_invalid_client(app, services, flow):
    client_id, _ = services["platform"]
    response = introspect(flow.http, "x", client_id, "wrong-secret")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


# With Redis, an instance keeps the answer it gave for a live access token
# (``idp.oauth.introspection_answers``): it must never outlive what made it true.


def _kept(gateway, flow, partner_world, services) -> tuple[str, dict]:
    """An access token and the active answer ``gateway`` gave for it (and now keeps)."""
    token = tokens_for(flow, partner_world["owner"].email)["access_token"]
    body = introspect(gateway, token, *services["platform"]).get_json()
    assert body["active"] is True
    return token, body


@pytest.mark.redis
def test_a_warm_instance_answers_again_without_reading_the_token(
    app, partner_world, services, flow, redis_instances, monkeypatch
):
    gateway = redis_instances[1].test_client()
    token, first = _kept(gateway, flow, partner_world, services)

    def unread(*_):
        raise AssertionError("the token was read again")

    monkeypatch.setattr("idp.oauth.hot_paths._introspection.query_token", unread)
    assert introspect(gateway, token, *services["platform"]).get_json() == first


@pytest.mark.redis
def test_a_kept_answer_ends_on_every_instance_when_the_login_is_revoked(
    app, partner_world, services, flow, redis_instances
):
    one, two = redis_instances
    tokens = tokens_for(flow, partner_world["owner"].email)
    gateways = one.test_client(), two.test_client()  # the first revokes, the second hears of it
    for gateway in gateways * 2:
        assert introspect(gateway, tokens["access_token"], *services["platform"]).json["active"]

    revoked = gateways[0].post(
        "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": "partner-hub"}
    )
    assert revoked.status_code == 200
    for gateway in gateways:
        answer = introspect(gateway, tokens["access_token"], *services["platform"])
        assert answer.get_json() == {"active": False}


@pytest.mark.redis
def test_a_kept_answer_ends_when_the_token_expires(
    app, partner_world, services, flow, redis_instances, monkeypatch
):
    gateway = redis_instances[1].test_client()
    token, body = _kept(gateway, flow, partner_world, services)

    later = body["exp"] + 1.0
    monkeypatch.setattr(time, "time", lambda: later)
    answer = introspect(gateway, token, *services["platform"])
    assert answer.get_json() == {"active": False}


@pytest.mark.redis
def test_an_answer_kept_for_one_client_is_not_given_to_another(
    app, partner_world, services, flow, redis_instances
):
    gateway = redis_instances[1].test_client()
    token, _ = _kept(gateway, flow, partner_world, services)
    answer = introspect(gateway, token, *services["partner"])
    assert answer.get_json() == {"active": False}


@pytest.mark.redis
def test_a_kept_answer_ends_when_the_tokens_family_does(
    app, partner_world, services, flow, redis_instances, monkeypatch
):
    tokens = tokens_for(flow, partner_world["owner"].email)
    # A login near its absolute end: its family ends before its access token does.
    db.session.execute(db.update(TokenFamily).values(expires_at=utcnow() + timedelta(seconds=60)))
    db.session.commit()
    gateway = redis_instances[1].test_client()
    assert introspect(gateway, tokens["access_token"], *services["platform"]).json["active"]

    later, moment = time.time() + 120, utcnow() + timedelta(seconds=120)
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr("idp.oauth.tokens_view.utcnow", lambda: moment)
    answer = introspect(gateway, tokens["access_token"], *services["platform"])
    assert answer.get_json() == {"active": False}


@pytest.mark.redis
def test_a_refresh_token_answer_is_never_kept(app, partner_world, services, flow, redis_instances):
    one, two = redis_instances
    tokens = tokens_for(flow, partner_world["owner"].email)
    gateway = two.test_client()
    for _ in range(2):  # no hint: read as an access token first, then found as a refresh token
        assert introspect(gateway, tokens["refresh_token"], *services["platform"]).json["active"]

    rotated = refresh(one.test_client(), tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    answer = introspect(gateway, tokens["refresh_token"], *services["platform"])
    assert answer.get_json() == {"active": False}
