"""Discovery (OIDC Discovery 1.0, RFC 8414), the JWKS, and tokens checked by joserfc."""

from __future__ import annotations

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from idp.keys.service import JWKS_MAX_AGE
from tests.oauth.conftest import tokens_for


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
def test_both_documents_list_every_endpoint_truthfully(app, browser, path):
    response = browser.get(path)
    assert response.status_code == 200
    meta = response.get_json()
    issuer = app.config["IDP_ISSUER"]
    assert meta["issuer"] == issuer
    for name, endpoint in {
        "authorization_endpoint": "/oauth/authorize",
        "token_endpoint": "/oauth/token",
        "userinfo_endpoint": "/oauth/userinfo",
        "jwks_uri": "/oauth/jwks",
        "revocation_endpoint": "/oauth/revoke",
        "introspection_endpoint": "/oauth/introspect",
        "end_session_endpoint": "/oauth/logout",
    }.items():
        assert meta[name] == issuer + endpoint
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "implicit" not in meta["grant_types_supported"]
    assert "password" not in meta["grant_types_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    # OpenID Connect Discovery 1.0 section 3: RS256 MUST be among them.
    assert meta["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]


def test_every_advertised_endpoint_exists(app, browser):
    meta = browser.get("/.well-known/openid-configuration").get_json()
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        path = meta[name].removeprefix(app.config["IDP_ISSUER"])
        assert browser.post(path).status_code != 404, name


def test_the_jwks_is_cacheable_for_the_configured_time(app, browser):
    response = browser.get("/oauth/jwks")
    assert response.status_code == 200
    assert f"max-age={JWKS_MAX_AGE}" in response.headers["Cache-Control"]
    keys = response.get_json()["keys"]
    assert keys and all(k["kty"] == "EC" and k["alg"] == "ES256" and "d" not in k for k in keys)


def test_tokens_verify_with_an_independent_jose_library_against_the_jwks(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    keys = KeySet.import_key_set(flow.http.get("/oauth/jwks").get_json())
    access = jose_jwt.decode(tokens["access_token"], keys, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt"
    assert access.header["kid"] in {k.kid for k in keys}
    for claim in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "hub", "org"):
        assert claim in access.claims, claim
    assert access.claims["exp"] - access.claims["iat"] <= 900
    id_token = jose_jwt.decode(tokens["id_token"], keys, algorithms=["ES256"])
    assert id_token.claims["aud"] == "partner-hub"
    assert id_token.claims["nonce"] == "nonce-abc"


def test_discovery_lists_every_claim_an_id_token_carries(partner_world, flow):
    """An RP that checks claims against ``claims_supported`` finds each one it gets."""
    tokens = tokens_for(flow, partner_world["owner"].email)
    keys = KeySet.import_key_set(flow.http.get("/oauth/jwks").get_json())
    id_token = jose_jwt.decode(tokens["id_token"], keys, algorithms=["ES256"])
    supported = set(
        flow.http.get("/.well-known/openid-configuration").get_json()["claims_supported"]
    )
    assert set(id_token.claims) - supported == set()
