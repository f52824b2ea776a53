"""An off-the-shelf relying party (Authlib's requests client) against the real HTTP server.

Discovery, code + PKCE, token, userinfo, ID-token validation (joserfc, not
the library that signed), refresh and revocation, with no special-casing.
"""

from __future__ import annotations

import secrets

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from idp.extensions import db
from tests.factories import make_org, make_user
from tests.oauth.conftest import HUB_REDIRECT, login_over_http, make_hub_clients, query_of


@pytest.fixture
def rp_world(app_ctx):
    make_hub_clients()
    acme = make_org("partner", "Acme")
    user = make_user("partner", acme, "owner")
    db.session.commit()
    return {"user": user, "acme": acme}


def test_an_off_the_shelf_openid_client_completes_every_step(live_server, rp_world):
    issuer = live_server.url
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer

    rp = OAuth2Session(
        client_id="partner-hub",
        redirect_uri=HUB_REDIRECT,
        scope="openid email profile",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = login_over_http(url, HUB_REDIRECT, rp_world["user"].email)
    assert query_of(callback)["iss"] == issuer
    assert query_of(callback)["state"] == state

    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"].lower() == "bearer"

    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    id_token = jose_jwt.decode(token["id_token"], keys, algorithms=["ES256"])
    JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": "partner-hub"},
        sub={"essential": True, "value": rp_world["user"].id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(id_token.claims)
    assert id_token.claims["at_hash"] == create_half_hash(token["access_token"], "ES256").decode()
    access = jose_jwt.decode(token["access_token"], keys, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["org"] == rp_world["acme"].id

    userinfo = rp.get(meta["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == rp_world["user"].id
    assert userinfo.json()["email"] == rp_world["user"].email

    old_refresh = token["refresh_token"]
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
    assert refreshed["refresh_token"] != old_refresh

    revoked = rp.revoke_token(
        meta["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert revoked.status_code == 200
    after = requests.post(
        meta["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refreshed["refresh_token"],
            "client_id": "partner-hub",
        },
        timeout=10,
    )
    assert after.json()["error"] == "invalid_grant"
    assert rp.get(meta["userinfo_endpoint"], timeout=10).status_code == 401
