"""Switching partner: RFC 8693 token exchange, and authorize with ``organization``."""

from __future__ import annotations

import pytest

from idp.accounts.models import User
from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.oauth.models import TOKEN_EXCHANGE, TokenFamily
from tests.oauth.conftest import query_of, tokens_for

ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def _exchange(http, subject_token: str, organization: str, **extra):
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "client_id": "partner-hub",
        "subject_token": subject_token,
        "subject_token_type": ACCESS,
        "organization": organization,
    }
    data.update(extra)
    return http.post("/oauth/token", data={k: v for k, v in data.items() if v is not None})


def test_a_consultant_switches_partner_without_a_password(app, partner_world, flow):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = tokens_for(flow, consultant.email, acme.id)
    response = _exchange(flow.http, tokens["access_token"], globex.id)
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert body["issued_token_type"] == ACCESS
    assert body["refresh_token"]
    claims = verify_jwt(body["access_token"], typ="at+jwt")
    assert (claims["org"], claims["roles"], claims["sub"]) == (globex.id, ["owner"], consultant.id)
    assert db.session.get(User, consultant.id).last_organization_id == globex.id


def test_a_switch_refused_at_the_last_check_changes_nothing(app, partner_world, flow, monkeypatch):
    """The login is ended between the request's checks and its write (another request):
    the switch is refused, and the account still opens the partner it last chose."""
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = tokens_for(flow, consultant.email, acme.id)
    before = db.session.get(User, consultant.id).last_organization_id
    monkeypatch.setattr(TokenFamily, "is_active", property(lambda family: False))

    response = _exchange(flow.http, tokens["access_token"], globex.id)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    db.session.expire_all()
    assert db.session.get(User, consultant.id).last_organization_id == before != globex.id
    assert db.session.scalar(db.select(db.func.count()).select_from(TokenFamily)) == 1


def test_switching_to_a_partner_without_membership_is_invalid_target(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = _exchange(flow.http, tokens["access_token"], partner_world["globex"].id)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_target"


def test_an_organization_that_is_no_id_is_invalid_target(app, partner_world, flow):
    # On PostgreSQL, a NUL reached the database and came back as a 422 problem, not OAuth's error.
    tokens = tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    for organization in ("org\x00x", "org\x1bx", "x" * 81):
        response = _exchange(flow.http, tokens["access_token"], organization)
        assert (response.status_code, response.get_json()["error"]) == (400, "invalid_target")


def test_a_revoked_subject_token_is_invalid_grant(app, partner_world, flow):
    consultant = partner_world["consultant"]
    tokens = tokens_for(flow, consultant.email, partner_world["acme"].id)
    flow.http.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": "partner-hub"}
    )
    response = _exchange(flow.http, tokens["access_token"], partner_world["globex"].id)
    assert response.get_json()["error"] == "invalid_grant"


def test_a_garbage_subject_token_is_invalid_grant(app, partner_world, flow):
    response = _exchange(flow.http, "not-a-token", partner_world["globex"].id)
    assert response.get_json()["error"] == "invalid_grant"


def test_missing_parameters_are_invalid_request(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    missing_type = _exchange(
        flow.http, tokens["access_token"], partner_world["globex"].id, subject_token_type=None
    )
    assert missing_type.get_json()["error"] == "invalid_request"
    missing_org = _exchange(flow.http, tokens["access_token"], None)
    assert missing_org.get_json()["error"] == "invalid_request"


def test_authorize_with_an_organization_and_a_live_session_switches_too(app, partner_world, flow):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens_for(flow, consultant.email, acme.id)
    again = type(flow)(flow.http, nonce="switch-nonce")
    response = again.authorize(organization=globex.id)
    code = query_of(response.headers["Location"])["code"]
    body = again.exchange(code).get_json()
    assert verify_jwt(body["access_token"], typ="at+jwt")["org"] == globex.id


def test_authorize_with_a_foreign_organization_is_access_denied(app, partner_world, flow):
    owner, globex = partner_world["owner"], partner_world["globex"]
    tokens_for(flow, owner.email)
    again = type(flow)(flow.http, nonce="switch-nonce")
    response = again.authorize(organization=globex.id)
    params = query_of(response.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"


def test_switching_partner_does_not_outlive_the_login(app, partner_world, flow):
    import time
    from datetime import timedelta

    from idp.oauth.models import TokenFamily
    from idp.timeutil import utcnow
    from tests.oauth.conftest import refresh

    consultant = partner_world["consultant"]
    tokens = tokens_for(flow, consultant.email, partner_world["acme"].id)
    # The login is about to reach its absolute lifetime.
    login = db.session.scalars(db.select(TokenFamily)).one()
    login.expires_at = utcnow() + timedelta(seconds=2)
    db.session.commit()
    switched = _exchange(flow.http, tokens["access_token"], partner_world["globex"].id)
    assert switched.status_code == 200, switched.text
    time.sleep(2.5)
    # Past the login's lifetime the switched session ends too: the password is asked again.
    response = refresh(flow.http, switched.get_json()["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_a_membership_removed_after_login_is_refused_at_the_next_authorize(
    app, partner_world, flow
):
    from idp.orgs.models import Membership

    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens_for(flow, consultant.email, acme.id)
    db.session.execute(
        db.delete(Membership).where(
            Membership.user_id == consultant.id, Membership.organization_id == globex.id
        )
    )
    db.session.commit()
    again = type(flow)(flow.http, nonce="switch-nonce")
    params = query_of(again.authorize(organization=globex.id).headers["Location"])
    assert params["error"] == "access_denied"
    # Still a member of the other one, in the same browser session.
    again = type(flow)(flow.http, nonce="stay-nonce")
    assert "code" in query_of(again.authorize(organization=acme.id).headers["Location"])


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        # RFC 8693 2.2.2: an actor token that cannot be honoured is an error, not ignored.
        ({"actor_token": "not-a-token", "actor_token_type": ACCESS}, "invalid_request"),
        # 2.1: actor_token_type MUST NOT come without actor_token.
        ({"actor_token_type": ACCESS}, "invalid_request"),
        # 2.2.2: a target the server cannot issue for.
        ({"audience": "https://evil.example"}, "invalid_target"),
        ({"resource": "https://evil.example/api"}, "invalid_target"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
    ],
)
def test_parameters_the_exchange_cannot_honour_are_refused(app, partner_world, flow, extra, error):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = tokens_for(flow, consultant.email, acme.id)
    response = _exchange(flow.http, tokens["access_token"], globex.id, **extra)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == error


def test_this_service_s_own_audience_and_an_access_token_may_be_named(app, partner_world, flow):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = tokens_for(flow, consultant.email, acme.id)
    response = _exchange(
        flow.http,
        tokens["access_token"],
        globex.id,
        audience=app.config["IDP_ISSUER"],
        requested_token_type=ACCESS,
    )
    assert response.status_code == 200, response.get_json()


def test_a_switch_of_an_openid_login_returns_an_id_token_naming_the_new_partner(
    app, partner_world, flow
):
    """The hub's idea of who is signed in, and for which partner, follows the switch at once.

    As at a refresh (OpenID Connect Core 12.2): the same person, audience and
    sign-in time, the organization switched to, no nonce.
    """
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    tokens = tokens_for(flow, consultant.email, acme.id)
    original = verify_jwt(tokens["id_token"], audience="partner-hub", typ="JWT")
    body = _exchange(flow.http, tokens["access_token"], globex.id).get_json()
    switched = verify_jwt(body["id_token"], audience="partner-hub", typ="JWT")
    assert (switched["sub"], switched["org"]) == (consultant.id, globex.id)
    assert switched["auth_time"] == original["auth_time"]
    assert switched["sid"] != original["sid"]
    assert "nonce" not in switched


def test_a_switch_without_openid_returns_no_id_token(app, partner_world, flow):
    consultant, acme, globex = (partner_world[k] for k in ("consultant", "acme", "globex"))
    flow.scope = "email profile"
    tokens = tokens_for(flow, consultant.email, acme.id)
    response = _exchange(flow.http, tokens["access_token"], globex.id)
    assert response.status_code == 200, response.text
    assert "id_token" not in response.get_json()
