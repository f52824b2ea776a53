"""Signing keys: encrypted at rest, rotated so that no client ever meets an unknown kid."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from idp.extensions import db
from idp.keys.crypto import decrypt
from idp.keys.jwks import published_jwks
from idp.keys.models import SigningKey
from idp.keys.operations import rotate
from idp.keys.service import (
    PUBLISH_AHEAD,
    RSA_KEY_BITS,
    active_key,
    ensure_signing_key,
    keyring,
    sign_jwt,
    verify_jwt,
)
from idp.operator import operator_actor
from idp.timeutil import utcnow

OPERATOR = operator_actor("keys rotate")


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _published() -> set[str]:
    return {k["kid"] for k in published_jwks()["keys"]}


def _rotated(algorithm: str = "ES256") -> SigningKey:
    """Rotate every algorithm's key; the new key of ``algorithm``."""
    return next(row for row in rotate(OPERATOR) if row.algorithm == algorithm)


def _claims(app) -> dict:
    import time

    now = int(time.time())
    return {"iss": app.config["IDP_ISSUER"], "sub": "x", "iat": now, "exp": now + 60}


def _shift(kid: str, delta: timedelta) -> None:
    row = db.session.get(SigningKey, kid)
    row.activates_at += delta
    row.created_at += delta
    db.session.commit()
    keyring().invalidate()


def test_the_private_key_is_stored_encrypted(app_ctx):
    ensure_signing_key()
    row = db.session.scalars(db.select(SigningKey)).one()
    assert "PRIVATE KEY" not in row.private_key_encrypted
    assert "d" not in row.public_jwk


def test_a_rotated_key_is_published_before_it_signs(app_ctx):
    ensure_signing_key()
    old = active_key().kid
    new = _rotated()
    assert {old, new.kid} <= _published()
    assert _kid(sign_jwt(_claims(app_ctx))) == old
    assert (new.activates_at - new.created_at) >= PUBLISH_AHEAD


def test_the_new_key_signs_once_its_publication_period_has_passed(app_ctx):
    ensure_signing_key()
    old = active_key().kid
    _shift(old, -timedelta(hours=1))
    new = _rotated()
    _shift(new.kid, -PUBLISH_AHEAD - timedelta(seconds=1))
    token = sign_jwt(_claims(app_ctx))
    assert _kid(token) == new.kid
    assert verify_jwt(token)["sub"] == "x"
    assert old in {k["kid"] for k in published_jwks()["keys"]}


def test_a_retired_key_stays_published_until_its_tokens_have_expired(app_ctx):
    ensure_signing_key()
    old = active_key().kid
    _shift(old, -timedelta(days=10))
    old_token = sign_jwt(_claims(app_ctx))
    new = _rotated()
    _shift(new.kid, -PUBLISH_AHEAD)
    assert old in {k["kid"] for k in published_jwks()["keys"]}
    assert verify_jwt(old_token)["sub"] == "x"
    # Long after the successor activated (longer than any token lives), it is gone.
    _shift(new.kid, -timedelta(days=2))
    assert old not in {k["kid"] for k in published_jwks()["keys"]}
    assert new.kid in {k["kid"] for k in published_jwks()["keys"]}


def test_idp_keys_rotate_publishes_a_new_key_of_each_algorithm(app):
    from idp.cli import main

    with app.app_context():
        ensure_signing_key()
        ensure_signing_key("RS256")
    runner = CliRunner()
    result = runner.invoke(main, ["keys", "rotate"], obj=_script_info(app))
    assert result.exit_code == 0, result.output
    assert "(ES256); it signs from" in result.output
    assert "(RS256); it signs from" in result.output
    with app.app_context():
        rows = list(db.session.scalars(db.select(SigningKey)))
        pending = [r for r in rows if r.activates_at > utcnow()]
        assert sorted(r.algorithm for r in rows) == ["ES256", "ES256", "RS256", "RS256"]
        assert sorted(r.algorithm for r in pending) == ["ES256", "RS256"]


def test_every_key_idp_keys_rotate_creates_is_on_the_audit_log(app):
    from idp.audit.models import AuditEvent
    from idp.cli import main

    def kids() -> set[str]:
        return set(db.session.scalars(db.select(SigningKey.kid)))

    with app.app_context():
        ensure_signing_key()  # RS256 has no key yet: the rotation gives it a first one too
        before = kids()

    result = app.test_cli_runner().invoke(main, ["keys", "rotate"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        made = kids() - before
        published = db.session.execute(
            db.select(AuditEvent.target_id, AuditEvent.actor_id).where(
                AuditEvent.action == "signing_key.published"
            )
        ).all()
    assert len(made) == 3
    assert {kid for kid, _ in published} == made
    assert {actor for _, actor in published} == {"keys rotate"}


def test_rotation_gives_an_algorithm_without_a_key_one_to_sign_with(app_ctx):
    ensure_signing_key()
    rotate(OPERATOR)
    rsa_keys = db.session.scalars(db.select(SigningKey).where(SigningKey.algorithm == "RS256"))
    assert len(list(rsa_keys)) == 2
    assert active_key("RS256").activates_at <= utcnow()


def test_an_rsa_key_is_stored_encrypted_and_published_with_kid_alg_and_use(app_ctx):
    ensure_signing_key("RS256")
    row = db.session.scalars(db.select(SigningKey).where(SigningKey.algorithm == "RS256")).one()
    assert "PRIVATE KEY" not in row.private_key_encrypted
    pem = decrypt(app_ctx.config["IDP_KEY_ENCRYPTION_KEY"], row.private_key_encrypted, row.kid)
    assert serialization.load_pem_private_key(pem, None).key_size == RSA_KEY_BITS >= 3072
    (jwk,) = [k for k in published_jwks()["keys"] if k["kid"] == row.kid]
    assert {jwk["kty"], jwk["alg"], jwk["use"]} == {"RSA", "RS256", "sig"}
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


def test_a_retired_rsa_key_stays_published_until_no_live_id_token_can_carry_it(app_ctx):
    ensure_signing_key("RS256")
    old = active_key("RS256").kid
    _shift(old, -timedelta(days=10))
    old_token = sign_jwt(_claims(app_ctx), algorithm="RS256")
    new = _rotated("RS256")
    assert _kid(sign_jwt(_claims(app_ctx), algorithm="RS256")) == old  # not yet signing
    _shift(new.kid, -PUBLISH_AHEAD)
    assert _kid(sign_jwt(_claims(app_ctx), algorithm="RS256")) == new.kid
    # An ID token the old key signed a moment ago is alive for IDP_ID_TOKEN_TTL.
    _shift(new.kid, -timedelta(seconds=app_ctx.config["IDP_ID_TOKEN_TTL"] - 60))
    assert old in _published()
    assert verify_jwt(old_token, algorithms=("RS256",))["sub"] == "x"
    # Once no token it signed can be alive, it is gone; the new key stays.
    _shift(new.kid, -timedelta(days=2))
    assert old not in _published()
    assert new.kid in _published()


@pytest.mark.parametrize("newer", ["ES256", "RS256"])
def test_a_newer_key_of_one_algorithm_never_retires_a_key_of_the_other(app_ctx, newer):
    older = "RS256" if newer == "ES256" else "ES256"
    ensure_signing_key(older)
    kept = active_key(older).kid
    _shift(kept, -timedelta(days=10))
    ensure_signing_key(newer)
    _shift(active_key(newer).kid, -timedelta(days=2))  # longer ago than any token lives
    assert kept in _published()
    assert _kid(sign_jwt(_claims(app_ctx), algorithm=older)) == kept


def _script_info(app):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)
