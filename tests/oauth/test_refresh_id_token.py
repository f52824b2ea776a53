"""OpenID Connect Core 12.2: a refresh of an ``openid`` login returns a new ID token.

Its ``iss``, ``sub`` and ``aud`` are the original's, ``auth_time`` the time of
the original sign-in, with no ``nonce``; it is signed as its client registered,
by the key that signs now, so a relying party renews the hint it logs out with
(and after ``idp keys revoke``, one the JWKS still publishes) without a sign-in.
"""

from __future__ import annotations

import re
import time

import jwt
import pytest
from authlib.oidc.core.util import create_half_hash
from click.testing import CliRunner
from flask.cli import ScriptInfo

from idp.cli import main
from idp.extensions import db
from idp.oauth.models import AuthorizationCode, RefreshToken, TokenFamily
from tests.oauth.conftest import HUB_REDIRECT, refresh, register_partner_hub, tokens_for

SIGNED_IN_EARLIER = 3600


def _verified_with_the_jwks(http, token: str, alg: str) -> dict:
    """``token`` checked by PyJWT with the published key its kid names, ``alg`` only."""
    jwks = jwt.PyJWKSet.from_dict(http.get("/oauth/jwks").get_json())
    kid = jwt.get_unverified_header(token)["kid"]
    (key,) = [k for k in jwks.keys if k.key_id == kid]
    assert key.algorithm_name == alg
    return jwt.decode(token, key, algorithms=[alg], audience="partner-hub")


def _signed_in_earlier(flow, email: str, organization_id: str | None = None) -> dict:
    """A code flow whose sign-in is dated ``SIGNED_IN_EARLIER`` seconds ago."""
    code = flow.code_for(email, organization_id)
    db.session.execute(
        db.update(AuthorizationCode).values(auth_time=int(time.time()) - SIGNED_IN_EARLIER)
    )
    db.session.commit()
    response = flow.exchange(code)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _refreshed(http, refresh_token: str, **extra) -> dict:
    response = refresh(http, refresh_token, **extra)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _switched(http, access_token: str, organization_id: str) -> dict:
    """The token response of a partner switch (RFC 8693) to ``organization_id``."""
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": "partner-hub",
            "subject_token": access_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "organization": organization_id,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _purge(family_id: str) -> None:
    """As the purge leaves a login: its codes, and the family ``family_id``, gone."""
    db.session.execute(db.delete(AuthorizationCode))
    db.session.execute(db.delete(RefreshToken).where(RefreshToken.family_id == family_id))
    db.session.execute(db.delete(TokenFamily).where(TokenFamily.id == family_id))
    db.session.commit()


def _logout(http, id_token: str):
    return http.get(
        "/oauth/logout",
        query_string={"id_token_hint": id_token, "post_logout_redirect_uri": HUB_REDIRECT},
    )


def test_a_refresh_returns_an_id_token_of_the_original_sign_in(app, partner_world, flow):
    owner, acme = partner_world["owner"], partner_world["acme"]
    tokens = _signed_in_earlier(flow, owner.email)
    original = _verified_with_the_jwks(flow.http, tokens["id_token"], "ES256")

    body = _refreshed(flow.http, tokens["refresh_token"])
    renewed = _verified_with_the_jwks(flow.http, body["id_token"], "ES256")

    for name in ("iss", "sub", "aud", "azp", "auth_time", "amr", "sid", "hub", "org", "email"):
        assert renewed[name] == original[name], name
    assert renewed["sub"] == owner.id and renewed["org"] == acme.id
    assert renewed["auth_time"] == original["auth_time"] <= time.time() - SIGNED_IN_EARLIER
    assert renewed["iat"] >= original["iat"] and renewed["exp"] > renewed["iat"]
    assert "nonce" not in renewed
    assert renewed["at_hash"] == create_half_hash(body["access_token"], "ES256").decode()
    # The renewed token is the hint the relying party logs out with.
    assert _logout(flow.http, body["id_token"]).status_code == 302


def test_each_refresh_renews_it_and_a_narrower_access_token_narrows_its_claims(
    app, partner_world, flow
):
    tokens = tokens_for(flow, partner_world["owner"].email)
    second = _refreshed(flow.http, tokens["refresh_token"], scope="openid profile")
    claims = jwt.decode(second["id_token"], options={"verify_signature": False})
    assert "email" not in claims
    assert claims["at_hash"] == create_half_hash(second["access_token"], "ES256").decode()
    # The refresh token kept the login's scope: the next one has the address again.
    third = _refreshed(flow.http, second["refresh_token"])
    assert "email" in jwt.decode(third["id_token"], options={"verify_signature": False})


def test_without_openid_a_refresh_returns_no_id_token(app, partner_world, flow):
    flow.scope = "email profile"
    tokens = tokens_for(flow, partner_world["owner"].email)
    assert "id_token" not in tokens
    assert "id_token" not in _refreshed(flow.http, tokens["refresh_token"])


def test_a_switched_partner_s_refresh_names_it_and_keeps_the_sign_in_time(app, partner_world, flow):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = _signed_in_earlier(flow, consultant.email, acme.id)
    original = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    switched = _switched(flow.http, tokens["access_token"], globex.id)
    renewed = _verified_with_the_jwks(
        flow.http, _refreshed(flow.http, switched["refresh_token"])["id_token"], "ES256"
    )
    assert (renewed["sub"], renewed["org"]) == (consultant.id, globex.id)
    assert renewed["auth_time"] == original["auth_time"]
    assert renewed["sid"] != original["sid"]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_after_the_signing_key_is_revoked_the_refreshed_id_token_has_the_new_key(
    app, partner_world, flow, alg
):
    register_partner_hub(alg)
    tokens = tokens_for(flow, partner_world["owner"].email)
    leaked = jwt.get_unverified_header(tokens["id_token"])["kid"]
    result = CliRunner().invoke(
        main,
        ["keys", "revoke", leaked, "--ticket", "INC-1", "--reason", "found in a repository"],
        obj=ScriptInfo(create_app=lambda: app),
    )
    assert result.exit_code == 0, result.output
    (new,) = re.findall(rf"published (\S+) \({alg}\)", result.output)
    assert _logout(flow.http, tokens["id_token"]).status_code == 400

    renewed = _refreshed(flow.http, tokens["refresh_token"])["id_token"]
    assert jwt.get_unverified_header(renewed)["kid"] == new
    assert _verified_with_the_jwks(flow.http, renewed, alg)["sub"] == partner_world["owner"].id
    assert _logout(flow.http, renewed).status_code == 302


def test_once_the_sign_in_s_code_is_purged_a_refresh_still_names_the_sign_in(
    app, partner_world, flow
):
    tokens = _signed_in_earlier(flow, partner_world["owner"].email)
    original = _verified_with_the_jwks(flow.http, tokens["id_token"], "ES256")
    db.session.execute(db.delete(AuthorizationCode))
    db.session.commit()
    renewed = _verified_with_the_jwks(
        flow.http, _refreshed(flow.http, tokens["refresh_token"])["id_token"], "ES256"
    )
    assert renewed["sub"] == partner_world["owner"].id
    assert (renewed["auth_time"], renewed["amr"]) == (original["auth_time"], ["pwd"])


def test_a_switched_login_keeps_its_sign_in_after_the_family_it_came_from_is_purged(
    app, partner_world, flow
):
    """The family switched from may be revoked alone and purged first (``idp.janitor``)."""
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = _signed_in_earlier(flow, consultant.email, acme.id)
    original = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    switched = _switched(flow.http, tokens["access_token"], globex.id)
    _purge(original["sid"])

    renewed = _verified_with_the_jwks(
        flow.http, _refreshed(flow.http, switched["refresh_token"])["id_token"], "ES256"
    )
    assert (renewed["sub"], renewed["org"]) == (consultant.id, globex.id)
    assert renewed["auth_time"] == original["auth_time"] <= time.time() - SIGNED_IN_EARLIER
    assert renewed["amr"] == original["amr"] == ["pwd"]


def test_a_login_opened_before_families_kept_the_sign_in_takes_it_from_its_code(
    app, partner_world, flow
):
    """A family the upgrade has not filled (yet), or opened by the code before it, and one
    switched from it: both name the sign-in of the code that opened the login."""
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = _signed_in_earlier(flow, consultant.email, acme.id)
    original = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    switched = _switched(flow.http, tokens["access_token"], globex.id)
    db.session.execute(db.update(TokenFamily).values(auth_time=None, amr=None))
    db.session.commit()

    for refresh_token in (tokens["refresh_token"], switched["refresh_token"]):
        renewed = _verified_with_the_jwks(
            flow.http, _refreshed(flow.http, refresh_token)["id_token"], "ES256"
        )
        assert renewed["auth_time"] == original["auth_time"] <= time.time() - SIGNED_IN_EARLIER
        assert renewed["amr"] == ["pwd"]


def test_a_switch_from_a_login_opened_before_families_kept_the_sign_in_keeps_it_from_then_on(
    app, partner_world, flow
):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = _signed_in_earlier(flow, consultant.email, acme.id)
    original = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    db.session.execute(db.update(TokenFamily).values(auth_time=None, amr=None))
    db.session.commit()
    switched = _switched(flow.http, tokens["access_token"], globex.id)
    # The code and the family switched from are purged; the new family remembers.
    _purge(original["sid"])

    renewed = _verified_with_the_jwks(
        flow.http, _refreshed(flow.http, switched["refresh_token"])["id_token"], "ES256"
    )
    assert (renewed["auth_time"], renewed["amr"]) == (original["auth_time"], ["pwd"])
