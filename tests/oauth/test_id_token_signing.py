"""ID tokens signed with the algorithm their client registered: ES256 by default, or RS256.

OpenID Connect Core 15.1 makes RS256 mandatory to implement; a relying party
whose library accepts nothing else registers ``id_token_signed_response_alg``
RS256. Access tokens stay ES256 whatever the client registered.
"""

from __future__ import annotations

import time

import jwt
import pytest
from authlib.oidc.core.util import create_half_hash

from idp.extensions import db
from idp.keys.models import SigningKey
from idp.keys.service import sign_jwt
from idp.oauth.clients import UnsupportedIdTokenAlg, register_hub_client
from idp.oauth.models import OAuthClient
from tests.factories import make_org
from tests.oauth.conftest import (
    HUB_REDIRECT,
    introspect,
    make_platform_client,
    refresh,
    register_partner_hub,
    tokens_for,
)


def _verified_with_the_jwks(http, token: str, alg: str, audience: str = "partner-hub") -> dict:
    """``token`` checked by PyJWT with the published key its kid names, ``alg`` only."""
    jwks = jwt.PyJWKSet.from_dict(http.get("/oauth/jwks").get_json())
    kid = jwt.get_unverified_header(token)["kid"]
    (key,) = [k for k in jwks.keys if k.key_id == kid]
    assert (key.algorithm_name, key.public_key_use) == (alg, "sig")
    return jwt.decode(token, key, algorithms=[alg], audience=audience)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_the_id_token_is_signed_as_the_client_registered_and_verifies_against_the_jwks(
    app, partner_world, flow, alg
):
    register_partner_hub(alg)
    tokens = tokens_for(flow, partner_world["owner"].email)
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == alg
    id_token = _verified_with_the_jwks(flow.http, tokens["id_token"], alg)
    assert id_token["iss"] == app.config["IDP_ISSUER"]
    assert id_token["nonce"] == "nonce-abc"
    assert id_token["sub"] == partner_world["owner"].id
    assert id_token["at_hash"] == create_half_hash(tokens["access_token"], alg).decode()
    # The access token is ES256 whatever the client's ID tokens are.
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "ES256"
    access = _verified_with_the_jwks(
        flow.http, tokens["access_token"], "ES256", audience=app.config["IDP_ISSUER"]
    )
    assert access["client_id"] == "partner-hub"


def test_an_rs256_client_keeps_userinfo_and_refresh(app, partner_world, flow):
    register_partner_hub("RS256")
    tokens = tokens_for(flow, partner_world["owner"].email)
    refreshed = refresh(flow.http, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)
    # OpenID Connect Core 12.2: the refresh's ID token is signed as the client registered.
    renewed = refreshed.get_json()["id_token"]
    assert jwt.get_unverified_header(renewed)["alg"] == "RS256"
    assert _verified_with_the_jwks(flow.http, renewed, "RS256")["sub"] == partner_world["owner"].id
    access = refreshed.get_json()["access_token"]
    assert jwt.get_unverified_header(access)["alg"] == "ES256"
    info = flow.http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert info.status_code == 200
    assert info.get_json()["sub"] == partner_world["owner"].id


# RFC 7518 sections 6.2.1 and 6.3.1: the public members of each key type.
PUBLIC_MEMBERS = {"EC": ("crv", "x", "y"), "RSA": ("n", "e")}


def test_registering_rs256_publishes_an_rsa_key_before_any_id_token(app, hub_clients, browser):
    register_partner_hub("RS256")
    keys = browser.get("/oauth/jwks").get_json()["keys"]
    rsa = [k for k in keys if k["kty"] == "RSA"]
    assert len(rsa) == 1
    assert (rsa[0]["alg"], rsa[0]["use"]) == ("RS256", "sig") and rsa[0]["kid"]
    assert jwt.PyJWK(rsa[0]).key.key_size >= 3072
    # RFC 7517 section 4.3: "use" and "key_ops" SHOULD NOT be used together.
    assert all(set(k) == {"kty", "kid", "alg", "use", *PUBLIC_MEMBERS[k["kty"]]} for k in keys)


@pytest.mark.parametrize("alg", ["none", "HS256", "ES512", "PS256", "rs256", ""])
def test_any_other_algorithm_is_refused_at_registration_and_changes_nothing(app, hub_clients, alg):
    with pytest.raises(UnsupportedIdTokenAlg) as refused:
        register_hub_client("partner", [HUB_REDIRECT], [HUB_REDIRECT], alg)
    assert "ES256, RS256" in str(refused.value)
    db.session.rollback()
    assert db.session.get(OAuthClient, "partner-hub").id_token_signed_response_alg == "ES256"
    assert db.session.scalar(db.select(SigningKey).where(SigningKey.algorithm != "ES256")) is None


def test_an_access_token_signed_with_the_rsa_key_is_worth_nothing(app, partner_world, flow):
    """The RSA key signs ID tokens only: the API, userinfo and introspection refuse it."""
    register_partner_hub("RS256")
    tokens = tokens_for(flow, partner_world["owner"].email)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    forged = sign_jwt(claims | {"iat": int(time.time())}, typ="at+jwt", algorithm="RS256")
    info = flow.http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {forged}"})
    assert info.status_code == 401
    platform, secret = make_platform_client(make_org("support", "Support"))
    assert introspect(flow.http, forged, platform.client_id, secret).get_json() == {"active": False}
    genuine = introspect(flow.http, tokens["access_token"], platform.client_id, secret)
    assert genuine.get_json()["active"] is True
