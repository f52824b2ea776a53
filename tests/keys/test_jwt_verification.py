"""verify_jwt accepts exactly what PyJWT would, and refuses every forged or stale token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app

from idp.extensions import db
from idp.keys import ring, service
from idp.keys.crypto import decrypt
from idp.keys.service import ALGORITHM, active_key, keyring, sign_jwt, verify_jwt
from tests.instances import Reads

AUDIENCE = "https://api.example"


@pytest.fixture
def claims(app_ctx):
    now = int(time.time())
    return {"iss": app_ctx.config["IDP_ISSUER"], "sub": "usr_1", "iat": now, "exp": now + 60}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _signed(claims: dict, **headers) -> str:
    """A token signed with the service's active key and the given extra headers."""
    key = active_key()
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid} | headers
    )


def test_same_claims_as_pyjwt(claims):
    token = sign_jwt(claims | {"aud": AUDIENCE, "roles": ["owner"]}, typ="at+jwt")
    expected = jwt.decode(token, active_key().public_key, algorithms=[ALGORITHM], audience=AUDIENCE)
    assert verify_jwt(token, audience=AUDIENCE, typ="at+jwt") == expected


def test_an_altered_payload_fails_the_signature(claims):
    header, _, signature = sign_jwt(claims).split(".")
    forged = _b64(json.dumps(claims | {"sub": "usr_admin"}).encode())
    with pytest.raises(jwt.InvalidSignatureError):
        verify_jwt(f"{header}.{forged}.{signature}")


def test_a_foreign_key_using_our_kid_fails(claims):
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims, stranger, algorithm=ALGORITHM, headers={"kid": active_key().kid})
    with pytest.raises(jwt.InvalidSignatureError):
        verify_jwt(token)


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384", "RS256"])
def test_only_es256_is_accepted(claims, alg):
    header = _b64(json.dumps({"alg": alg, "kid": active_key().kid, "typ": "JWT"}).encode())
    _, body, signature = sign_jwt(claims).split(".")
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_jwt(f"{header}.{body}.{signature}")


@pytest.fixture
def rsa_key(app_ctx):
    """The ring's RSA key (an RS256 client's ID tokens), signing."""
    service.ensure_signing_key("RS256")
    return active_key("RS256")


def test_an_rs256_token_verifies_where_rs256_is_accepted_only(claims, rsa_key):
    token = sign_jwt(claims | {"aud": "client-hub"}, algorithm="RS256")
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("RS256", rsa_key.kid)
    expected = jwt.decode(token, rsa_key.public_key, algorithms=["RS256"], audience="client-hub")
    assert verify_jwt(token, algorithms=("RS256",)) == expected
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_jwt(token)  # an access token's check: ES256 only


@pytest.mark.parametrize("signer", ["ES256", "RS256"])
def test_a_key_never_vouches_for_another_algorithm(claims, rsa_key, signer):
    """A valid signature of one algorithm's key under the kid of the other's is refused."""
    ec_key = active_key("ES256")
    signing, named = (ec_key, rsa_key) if signer == "ES256" else (rsa_key, ec_key)
    token = jwt.encode(claims, signing.private_key, algorithm=signer, headers={"kid": named.kid})
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_jwt(token, algorithms=("ES256", "RS256"))


def test_hs256_keyed_with_the_published_rsa_key_is_refused(claims, rsa_key):
    """The classic downgrade: an HMAC "signature" whose secret is the public key."""
    public_pem = rsa_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "kid": rsa_key.kid, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_jwt(f"{header}.{body}.{_b64(mac)}", algorithms=("ES256", "RS256"))


def test_a_remembered_rs256_token_is_still_refused_where_only_es256_is(claims, rsa_key):
    token = sign_jwt(claims, algorithm="RS256")
    assert verify_jwt(token, algorithms=("RS256",))["sub"] == "usr_1"
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_jwt(token)


def test_critical_extensions_are_refused(claims):
    with pytest.raises(jwt.InvalidTokenError):
        verify_jwt(_signed(claims, crit=["exp"]))


def test_expired_tokens_are_refused_unless_expiry_is_waived(claims):
    token = sign_jwt(claims | {"iat": int(time.time()) - 120, "exp": int(time.time()) - 30})
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_jwt(token)
    assert verify_jwt(token, verify_exp=False)["sub"] == "usr_1"


def test_small_clock_skew_is_tolerated(claims):
    now = int(time.time())
    assert verify_jwt(sign_jwt(claims | {"iat": now + 3, "exp": now - 2}))["sub"] == "usr_1"


@pytest.mark.parametrize("name", ["iat", "nbf"])
def test_tokens_from_the_future_are_refused(claims, name):
    with pytest.raises(jwt.ImmatureSignatureError):
        verify_jwt(sign_jwt(claims | {name: int(time.time()) + 120}))


@pytest.mark.parametrize("missing", ["exp", "iat", "iss"])
def test_required_claims(claims, missing):
    del claims[missing]
    with pytest.raises(jwt.MissingRequiredClaimError):
        verify_jwt(sign_jwt(claims))


def test_another_issuer_is_refused(claims):
    with pytest.raises(jwt.InvalidIssuerError):
        verify_jwt(sign_jwt(claims | {"iss": "https://evil.example"}))


@pytest.mark.parametrize(
    ("aud", "ok"), [(AUDIENCE, True), (["x", AUDIENCE], True), ("x", False), (None, False)]
)
def test_audience(claims, aud, ok):
    token = sign_jwt(claims if aud is None else claims | {"aud": aud})
    if ok:
        assert verify_jwt(token, audience=AUDIENCE)["sub"] == "usr_1"
    else:
        with pytest.raises(jwt.InvalidTokenError):
            verify_jwt(token, audience=AUDIENCE)


def test_the_token_type_must_match(claims):
    assert verify_jwt(sign_jwt(claims, typ="at+jwt"), typ="at+jwt")
    assert verify_jwt(_signed(claims, typ="application/at+jwt"), typ="at+jwt")
    with pytest.raises(jwt.InvalidTokenError):
        verify_jwt(sign_jwt(claims, typ="JWT"), typ="at+jwt")


def test_an_unknown_kid_is_refused(claims):
    with pytest.raises(jwt.InvalidTokenError):
        verify_jwt(_signed(claims, kid="sk_unknown"))


@pytest.fixture
def fresh_ring(app_ctx, monkeypatch):
    """The ring of a process that has not yet reloaded for an unknown kid."""
    active_key()  # the first key exists
    monkeypatch.setitem(app_ctx.extensions, "idp_keyring", ring.KeyRing())
    return keyring()


def test_tokens_naming_unknown_kids_reload_the_ring_at_most_once_a_second(app, fresh_ring, claims):
    # Anyone can name a kid: no valid signature is needed to make a process look for it.
    assert verify_jwt(sign_jwt(claims))  # the ring is loaded
    with Reads(app, "signing_keys") as reads:
        for n in range(20):
            with pytest.raises(jwt.InvalidTokenError, match="unknown key"):
                verify_jwt(_signed(claims, kid=f"sk_forged{n}"))
    assert reads.count == 1


def test_a_key_another_instance_made_is_found_by_the_first_token_naming_it(
    fresh_ring, claims, monkeypatch
):
    monkeypatch.setattr(ring, "UNKNOWN_KID_RELOAD_EVERY", 0.2)
    assert verify_jwt(sign_jwt(claims))  # the ring is loaded

    def made_elsewhere() -> str:
        # Another instance's first key, or one an operator made active at once:
        # this ring has not loaded it.
        key = service.create_key(activate_immediately=True)
        db.session.commit()
        kek = current_app.config["IDP_KEY_ENCRYPTION_KEY"]
        pem = decrypt(kek, key.private_key_encrypted, key.kid)
        signer = serialization.load_pem_private_key(pem, password=None)
        return jwt.encode(claims, signer, algorithm=ALGORITHM, headers={"kid": key.kid})

    assert verify_jwt(made_elsewhere())["sub"] == "usr_1"
    # Within the interval another new kid waits for the next reload...
    second = made_elsewhere()
    with pytest.raises(jwt.InvalidTokenError, match="unknown key"):
        verify_jwt(second)
    time.sleep(0.2)
    assert verify_jwt(second)["sub"] == "usr_1"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t + ".x",
        lambda t: t.replace(".", "=.", 1),
        lambda t: "!" + t,
        lambda t: _b64(b"not json") + "." + t.split(".", 1)[1],
        lambda t: _b64(b"[1]") + "." + t.split(".", 1)[1],
        lambda t: "",
    ],
)
def test_malformed_tokens_are_invalid(claims, mangle):
    with pytest.raises(jwt.InvalidTokenError):
        verify_jwt(mangle(sign_jwt(claims)))


@pytest.mark.parametrize("part", ["header", "payload"])
def test_json_nested_past_the_decoders_depth_is_an_invalid_token_not_a_server_error(client, part):
    nested = _b64(b"[" * 3000 + b"]" * 3000)
    plain = _b64(json.dumps({"alg": ALGORITHM}).encode())
    token = f"{nested}.{plain}.AAAA" if part == "header" else f"{plain}.{nested}.AAAA"
    resp = client.get("/v1/audit-events", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "invalid_token"
