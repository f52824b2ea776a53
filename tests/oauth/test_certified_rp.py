"""A certified OpenID Connect relying party (pyoidc) against the real HTTP server and demo data.

pyoidc (``oic``) is certified by the OpenID Foundation and shares no code with
the Authlib-based server. Configured as the demo's public ``client-hub`` client
is registered (no client secret, ES256 ID tokens; or RS256, the library's
default, once the client is registered for it), it reads discovery and checks
the issuer, builds the authorization request with PKCE S256, parses the
authorization response, exchanges the code and verifies the ID token (ES256
signature against the published JWKS, ``iss``, ``aud``, ``nonce``, ``exp``,
``at_hash``), calls userinfo and refreshes. Its client has no RFC 7009
revocation, so that one step is a plain HTTP request.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests
from jwkest import BadSignature
from oic import rndstr
from oic.exception import NotForMe, PyoidcError
from oic.oauth2.message import ErrorResponse, WrongSigningAlgorithm
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    IdToken,
    OpenIDSchema,
    RegistrationResponse,
    verify_id_token,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from oic.utils.time_util import utc_time_sans_frac

from idp.demo import load_demo
from idp.demo.oauth import callback_uris
from idp.extensions import db
from idp.oauth.clients import register_hub_client
from tests.oauth.conftest import login_over_http

CLIENT_ID = "client-hub"
EMAIL = "owner@bluebakery.example"


@pytest.fixture
def demo(app, live_server):
    with app.app_context():
        return load_demo()


def _relying_party(issuer: str, id_token_alg: str | None = "ES256") -> Client:
    """pyoidc set up as the demo's client-hub is registered, after reading discovery.

    ``id_token_alg`` None leaves the ID-token algorithm at the library's default.
    """
    rp = Client(client_id=CLIENT_ID, client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(issuer)  # raises when the document names another issuer
    alg = {} if id_token_alg is None else {"id_token_signed_response_alg": id_token_alg}
    rp.store_registration_info(
        RegistrationResponse(
            client_id=CLIENT_ID,
            redirect_uris=[f"{issuer}/demo/callback"],
            token_endpoint_auth_method="none",
            **alg,
        )
    )
    return rp


def _sign_in(rp: Client, password: str) -> tuple[str, str, AccessTokenResponse]:
    """Code + PKCE login through pyoidc; returns (state, nonce, verified token response)."""
    redirect_uri = rp.registration_response["redirect_uris"][0]
    pkce, verifier = rp.add_code_challenge()
    assert pkce["code_challenge_method"] == "S256"
    authorize_url, _, _, request = rp.authorization_request_info(
        request_args={
            "response_type": "code",
            "scope": ["openid", "email", "profile"],
            "redirect_uri": redirect_uri,
            "state": rndstr(24),
            "nonce": rndstr(32),
            **pkce,
        }
    )
    callback = login_over_http(authorize_url, redirect_uri, EMAIL, password)

    response = rp.parse_response(AuthorizationResponse, info=callback, sformat="urlencoded")
    assert response["state"] == request["state"]
    assert response["iss"] == rp.provider_info["issuer"]  # RFC 9207

    tokens = rp.do_access_token_request(
        state=request["state"],
        request_args={
            "code": response["code"],
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
        authn_method="",
        algs=rp.sign_enc_algs("id_token"),
    )
    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    return request["state"], request["nonce"], tokens


def test_certified_relying_party_completes_every_step_on_the_demo(live_server, demo):
    issuer = live_server.url
    rp = _relying_party(issuer)
    assert rp.provider_info["issuer"] == issuer
    assert "S256" in rp.provider_info["code_challenge_methods_supported"]
    published = {key.kid for key in rp.keyjar.get_issuer_keys(issuer)}
    assert published, "pyoidc loaded the JWKS from jwks_uri"

    state, nonce, tokens = _sign_in(rp, demo["password"])

    # pyoidc replaced the JWT by the IdToken it verified (signature, iss, aud, exp, iat).
    id_token = tokens["id_token"]
    assert isinstance(id_token, IdToken)
    assert id_token.jws_header["alg"] == "ES256"
    assert id_token.jws_header["kid"] in published
    assert id_token["iss"] == issuer
    assert id_token["aud"] == [CLIENT_ID]
    assert id_token["nonce"] == nonce == rp.state2nonce[state]
    assert id_token["exp"] > utc_time_sans_frac()
    with_hash = {"id_token": tokens["id_token_jwt"], "access_token": tokens["access_token"]}
    assert verify_id_token(with_hash, check_hash=True, keyjar=rp.keyjar, iss=issuer)

    # GET with the Authorization header, as OpenID Connect Core 5.3.1 recommends.
    userinfo = rp.do_user_info_request(method="GET", state=state)
    assert isinstance(userinfo, OpenIDSchema), userinfo.to_dict()
    assert userinfo["sub"] == id_token["sub"]
    assert userinfo["email"] == EMAIL
    assert userinfo["email_verified"] is True

    first_refresh = tokens["refresh_token"]
    refreshed = rp.do_access_token_refresh(
        state=state, request_args={"client_id": CLIENT_ID}, authn_method=""
    )
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["refresh_token"] != first_refresh
    assert rp.get_token(state=state).access_token == refreshed["access_token"]
    # The library's default: POST with the token in the form body (RFC 6750 2.2).
    by_post = rp.do_user_info_request(state=state)
    assert isinstance(by_post, OpenIDSchema), by_post.to_dict()
    assert by_post["sub"] == id_token["sub"]

    revoked = requests.post(
        rp.provider_info["revocation_endpoint"],
        data={
            "token": refreshed["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": CLIENT_ID,
        },
        timeout=10,
    )
    assert revoked.status_code == 200

    platform = demo["platform_client"]
    introspected = requests.post(
        rp.provider_info["introspection_endpoint"],
        data={"token": refreshed["access_token"]},
        auth=(platform["client_id"], platform["client_secret"]),
        timeout=10,
    )
    assert introspected.json() == {"active": False}
    denied = rp.do_user_info_request(method="GET", state=state)
    assert isinstance(denied, ErrorResponse)
    assert denied["error"] == "invalid_token"
    after = rp.do_access_token_refresh(
        state=state, request_args={"client_id": CLIENT_ID}, authn_method=""
    )
    assert isinstance(after, ErrorResponse)
    assert after["error"] == "invalid_grant"


def test_a_relying_party_left_at_its_librarys_rs256_default_signs_in(app, live_server, demo):
    """pyoidc, like many libraries, expects RS256 ID tokens unless told otherwise."""
    with app.app_context():
        uris = callback_uris()
        register_hub_client("client", uris, uris, id_token_signed_response_alg="RS256")
        db.session.commit()
    rp = _relying_party(live_server.url, id_token_alg=None)
    assert rp.sign_enc_algs("id_token")["sign"] == "RS256"
    assert "RS256" in rp.provider_info["id_token_signing_alg_values_supported"]

    state, nonce, tokens = _sign_in(rp, demo["password"])

    id_token = tokens["id_token"]
    assert isinstance(id_token, IdToken)
    assert id_token.jws_header["alg"] == "RS256"
    assert id_token.jws_header["kid"] in {key.kid for key in rp.keyjar.get_issuer_keys(rp.issuer)}
    assert id_token["nonce"] == nonce
    with_hash = {"id_token": tokens["id_token_jwt"], "access_token": tokens["access_token"]}
    assert verify_id_token(with_hash, check_hash=True, keyjar=rp.keyjar, iss=live_server.url)
    userinfo = rp.do_user_info_request(method="GET", state=state)
    assert isinstance(userinfo, OpenIDSchema), userinfo.to_dict()
    assert userinfo["sub"] == id_token["sub"]


def _forged(jws: str, header: dict | None = None, **claims) -> str:
    """``jws`` with claims changed; with ``header`` it has that header and no signature."""
    encoded_header, payload, signature = jws.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if header is not None:
        encoded_header, signature = _b64url_json(header), ""
    return f"{encoded_header}.{_b64url_json(body | claims)}.{signature}"


def _b64url_json(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_certified_relying_party_checks_what_the_server_signs_and_publishes(live_server, demo):
    # Discovery under another name of the same server: the issuer does not match.
    impostor = Client(client_id=CLIENT_ID, client_authn_method=CLIENT_AUTHN_METHOD)
    with pytest.raises(PyoidcError, match="issuer mismatch"):
        impostor.provider_config(live_server.url.replace("127.0.0.1", "localhost"))

    rp = _relying_party(live_server.url)
    _, _, tokens = _sign_in(rp, demo["password"])
    genuine = tokens["id_token_jwt"]
    algs = rp.sign_enc_algs("id_token")

    def parse(id_token: str, relying_party: Client = rp) -> AccessTokenResponse:
        body = {"access_token": "x", "token_type": "Bearer", "id_token": id_token}
        return relying_party.parse_response(AccessTokenResponse, info=json.dumps(body), algs=algs)

    assert isinstance(parse(genuine)["id_token"], IdToken)
    with pytest.raises(BadSignature):
        parse(_forged(genuine, sub="someone-else"))
    with pytest.raises(WrongSigningAlgorithm):
        parse(_forged(genuine, header={"alg": "none"}))

    stranger = Client(client_id="someone-elses-app", client_authn_method=CLIENT_AUTHN_METHOD)
    stranger.provider_config(live_server.url)
    with pytest.raises(NotForMe):
        parse(genuine, stranger)
