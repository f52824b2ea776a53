"""A token presented again skips its signature check, never the checks that can change."""

from __future__ import annotations

import time

import jwt
import pytest

from idp.extensions import db
from idp.keys import ring, service
from idp.keys.models import SigningKey
from idp.keys.service import active_key, keyring, sign_jwt, verify_jwt

AUDIENCE = "https://api.example"


@pytest.fixture
def token(app_ctx):
    now = int(time.time())
    claims = {"iss": app_ctx.config["IDP_ISSUER"], "sub": "usr_1", "iat": now, "exp": now + 60}
    value = sign_jwt(claims | {"aud": AUDIENCE}, typ="at+jwt")
    assert verify_jwt(value, audience=AUDIENCE, typ="at+jwt")["sub"] == "usr_1"
    return value


def test_a_remembered_token_still_meets_its_type_and_audience(token):
    assert verify_jwt(token, audience=AUDIENCE, typ="at+jwt")["sub"] == "usr_1"
    with pytest.raises(jwt.InvalidTokenError):
        verify_jwt(token, audience=AUDIENCE, typ="JWT")
    with pytest.raises(jwt.InvalidAudienceError):
        verify_jwt(token, audience="https://elsewhere.example", typ="at+jwt")


def test_a_remembered_token_still_expires(app_ctx):
    now = int(time.time())
    claims = {"iss": app_ctx.config["IDP_ISSUER"], "sub": "usr_1", "iat": now - 60}
    # Within the clock-skew leeway for one more second.
    value = sign_jwt(claims | {"exp": now + 1 - service.LEEWAY})
    assert verify_jwt(value)["sub"] == "usr_1"
    time.sleep(2.1)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_jwt(value)


def test_a_changed_copy_of_a_remembered_token_is_verified_afresh(token):
    header, body, signature = token.split(".")
    flipped = ("B" if signature[10] == "A" else "A").join((signature[:10], signature[11:]))
    with pytest.raises(jwt.InvalidSignatureError):
        verify_jwt(f"{header}.{body}.{flipped}", audience=AUDIENCE, typ="at+jwt")


def test_callers_cannot_change_what_is_remembered(token):
    verify_jwt(token, audience=AUDIENCE, typ="at+jwt")["sub"] = "usr_admin"
    assert verify_jwt(token, audience=AUDIENCE, typ="at+jwt")["sub"] == "usr_1"


def test_a_key_taken_out_of_the_ring_takes_its_remembered_tokens_with_it(token):
    # An operator deletes a compromised key; every instance reloads its ring.
    compromised = active_key().kid
    service.create_key(activate_immediately=True)
    db.session.execute(db.delete(SigningKey).where(SigningKey.kid == compromised))
    db.session.commit()
    keyring().invalidate()
    with pytest.raises(jwt.InvalidTokenError, match="unknown key"):
        verify_jwt(token, audience=AUDIENCE, typ="at+jwt")


def test_the_memory_is_bounded(app_ctx, monkeypatch):
    monkeypatch.setattr(ring, "VERIFIED_MAX_ENTRIES", 5)
    now = int(time.time())
    for n in range(12):
        claims = {"iss": app_ctx.config["IDP_ISSUER"], "sub": f"usr_{n}", "iat": now}
        assert verify_jwt(sign_jwt(claims | {"exp": now + 60}))["sub"] == f"usr_{n}"
        assert len(keyring().verified) <= 5
