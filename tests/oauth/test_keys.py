"""Signing keys: encrypted at rest, rotated so that no client ever meets an unknown kid."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner

from idp.extensions import db
from idp.keys.models import SigningKey
from idp.keys.service import (
    PUBLISH_AHEAD,
    active_key,
    ensure_signing_key,
    keyring,
    published_jwks,
    rotate,
    sign_jwt,
    verify_jwt,
)
from idp.timeutil import utcnow


def _kid(token: str) -> str:
    import jwt

    return jwt.get_unverified_header(token)["kid"]


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
    new = rotate()
    published = {k["kid"] for k in published_jwks()["keys"]}
    assert {old, new.kid} <= published
    assert _kid(sign_jwt(_claims(app_ctx))) == old
    assert (new.activates_at - new.created_at) >= PUBLISH_AHEAD


def test_the_new_key_signs_once_its_publication_period_has_passed(app_ctx):
    ensure_signing_key()
    old = active_key().kid
    _shift(old, -timedelta(hours=1))
    new = rotate()
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
    new = rotate()
    _shift(new.kid, -PUBLISH_AHEAD)
    assert old in {k["kid"] for k in published_jwks()["keys"]}
    assert verify_jwt(old_token)["sub"] == "x"
    # Long after the successor activated (longer than any token lives), it is gone.
    _shift(new.kid, -timedelta(days=2))
    assert old not in {k["kid"] for k in published_jwks()["keys"]}
    assert new.kid in {k["kid"] for k in published_jwks()["keys"]}


def test_idp_keys_rotate_publishes_a_new_key(app):
    from idp.cli import main

    with app.app_context():
        ensure_signing_key()
    runner = CliRunner()
    result = runner.invoke(main, ["keys", "rotate"], obj=_script_info(app))
    assert result.exit_code == 0, result.output
    assert "published sk_" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(SigningKey)) == 2
        assert utcnow() < max(r.activates_at for r in db.session.scalars(db.select(SigningKey)))


def _script_info(app):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)
