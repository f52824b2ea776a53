"""``idp keys revoke``: a key suspected leaked stops signing and verifying everywhere at once."""

from __future__ import annotations

import re

import jwt
import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from idp.audit.models import AuditEvent
from idp.cli import main
from idp.extensions import db
from idp.keys.models import SigningKey
from idp.keys.operations import rotate
from idp.keys.service import active_key, ensure_signing_key
from idp.operator import operator_actor
from tests.factories import make_org
from tests.oauth.conftest import (
    HUB_REDIRECT,
    BrowserClient,
    introspect,
    make_platform_client,
    refresh,
    register_partner_hub,
    tokens_for,
)

JWKS = "/oauth/jwks"
TICKET = "INC-4711"
REASON = "private key found in a public repository"


def _revoke(application, kid: str, *options: str):
    arguments = ["keys", "revoke", kid, *(options or ("--ticket", TICKET, "--reason", REASON))]
    return CliRunner().invoke(main, arguments, obj=ScriptInfo(create_app=lambda: application))


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _kids(http) -> set[str]:
    return {key["kid"] for key in http.get(JWKS).get_json()["keys"]}


def _userinfo(http, access_token: str):
    return http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def _logout(http, id_token: str):
    return http.get(
        "/oauth/logout",
        query_string={"id_token_hint": id_token, "post_logout_redirect_uri": HUB_REDIRECT},
    )


def _stored() -> list[tuple]:
    rows = db.session.scalars(db.select(SigningKey).order_by(SigningKey.kid))
    return [(row.kid, row.activates_at, row.revoked_at) for row in rows]


@pytest.mark.redis
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_key_revoked_through_one_instance_is_refused_and_unpublished_by_another_at_once(
    app, partner_world, flow, redis_instances, alg
):
    one, two = redis_instances
    register_partner_hub(alg)
    platform, secret = make_platform_client(make_org("support", "Support"))
    tokens = tokens_for(flow, partner_world["owner"].email)
    leaked = _kid(tokens["access_token"] if alg == "ES256" else tokens["id_token"])
    other = two.test_client()
    # The other instance has verified the access token (its ring holds every key) and
    # published the key: without a revocation it trusts both for half a minute.
    assert _userinfo(other, tokens["access_token"]).status_code == 200
    assert introspect(other, tokens["access_token"], platform.client_id, secret).json["active"]
    assert leaked in _kids(other)

    with one.app_context():  # the command runs in the context it finds
        result = _revoke(one, leaked)
    assert result.exit_code == 0, result.output
    assert f"revoked {leaked} ({alg})" in result.output
    (new,) = re.findall(rf"published (\S+) \({alg}\); it signs from now", result.output)

    published = _kids(other)
    assert leaked not in published
    assert new in published
    if alg == "ES256":
        assert _userinfo(other, tokens["access_token"]).status_code == 401
        answer = introspect(other, tokens["access_token"], platform.client_id, secret)
        assert answer.get_json() == {"active": False}
    else:
        assert _logout(other, tokens["id_token"]).status_code == 400
        assert _userinfo(other, tokens["access_token"]).status_code == 200  # ES256: untouched
        # The next sign-in through the other instance: its ID token is signed by the new
        # key, and is a good hint.
        again = tokens_for(
            type(flow)(BrowserClient(two), nonce="again"), partner_world["owner"].email
        )
        assert _kid(again["id_token"]) == new
        assert _logout(other, again["id_token"]).status_code == 302

    # The refresh token is opaque: it still works, and its access token is one of a live key.
    refreshed = refresh(other, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.get_json()["access_token"]
    assert _kid(access) == (new if alg == "ES256" else _kid(tokens["access_token"]))
    assert _userinfo(other, access).status_code == 200
    assert introspect(other, access, platform.client_id, secret).json["active"]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_revocation_is_on_record_with_its_ticket_and_reason(app_ctx, alg):
    ensure_signing_key(alg)
    leaked = active_key(alg).kid
    result = _revoke(app_ctx, leaked)
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    event = db.session.scalars(db.select(AuditEvent)).one()
    replacement = active_key(alg).kid
    assert replacement != leaked
    assert (event.action, event.actor_type, event.actor_id) == (
        "signing_key.revoked",
        "system",
        "keys revoke",
    )
    assert (event.target_type, event.target_id) == ("signing_key", leaked)
    assert (event.ticket, event.reason) == (TICKET, REASON)
    assert event.before == {"algorithm": alg, "active": True}
    assert event.after["replaced_by"] == replacement
    listed = CliRunner().invoke(main, ["keys", "list"], obj=ScriptInfo(create_app=lambda: app_ctx))
    assert re.search(rf"{leaked}  {alg}  activates \S+  revoked \S+Z", listed.output)


def test_revoking_a_key_that_does_not_sign_yet_leaves_the_signing_key_alone(app_ctx):
    ensure_signing_key()
    signing = active_key().kid
    (pending,) = [
        row.kid for row in rotate(operator_actor("keys rotate")) if row.algorithm == "ES256"
    ]
    result = _revoke(app_ctx, pending)
    assert result.exit_code == 0, result.output
    assert "published" not in result.output
    assert active_key().kid == signing
    kids = {key["kid"] for key in app_ctx.test_client().get(JWKS).get_json()["keys"]}
    assert signing in kids
    assert pending not in kids


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        (("--ticket", TICKET, "--reason", "no"), "reason: Length must be between 3 and 1000."),
        (("--ticket", "", "--reason", REASON), "ticket"),
        (("--ticket", "a\nb", "--reason", REASON), "ticket: Must not contain"),
    ],
)
def test_a_revocation_without_a_usable_ticket_or_reason_changes_nothing(app_ctx, options, refusal):
    ensure_signing_key()
    before = _stored()
    result = _revoke(app_ctx, active_key().kid, *options)
    assert result.exit_code == 1
    assert refusal in result.output
    assert len(result.output.strip().splitlines()) == 1
    db.session.expire_all()
    assert _stored() == before
    assert db.session.scalars(db.select(AuditEvent)).first() is None


def test_an_unknown_kid_is_refused_with_one_line_and_nothing_changes(app_ctx):
    ensure_signing_key()
    before = _stored()
    result = _revoke(app_ctx, "sk_unknown")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: No such signing key. (kid: sk_unknown)"
    db.session.expire_all()
    assert _stored() == before
    assert db.session.scalars(db.select(AuditEvent)).first() is None


def test_a_key_revoked_already_is_refused_with_one_line_and_nothing_changes(app_ctx):
    ensure_signing_key()
    leaked = active_key().kid
    assert _revoke(app_ctx, leaked).exit_code == 0
    db.session.expire_all()
    before = _stored()
    result = _revoke(app_ctx, leaked)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: The signing key is already revoked. (kid: {leaked})"
    db.session.expire_all()
    assert _stored() == before
    events = db.session.scalars(db.select(AuditEvent.action)).all()
    assert events == ["signing_key.revoked"]
