"""What ends with a login: its partner switches, its other codes' tokens, and what a reuse taints.

A partner switch (token exchange) opens a family of its own. It must end
with the family it was exchanged from (a logout, a revocation, a reused
refresh token), or a stolen 15-minute access token could be exchanged for a
refresh token that outlives all of them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from idp.accounts.models import User, new_security_stamp
from idp.extensions import db
from idp.login import session as login_session
from idp.login.models import LoginSession
from idp.login.session import end_logins
from idp.oauth import exchange, grants, logout, revocation
from idp.oauth.models import TOKEN_EXCHANGE, TokenFamily
from idp.oauth.revocation import revoke_family, revoke_login_families, revoke_user_tokens
from idp.timeutil import utcnow
from tests.consent.interleave import Competitor, pause_before
from tests.factories import PASSWORD, make_org
from tests.oauth.conftest import HUB_REDIRECT, csrf_from, query_of, refresh, tokens_for

ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def _switch(http, access_token: str, organization_id: str) -> dict:
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "client_id": "partner-hub",
            "subject_token": access_token,
            "subject_token_type": ACCESS,
            "organization": organization_id,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _alive(http, tokens: dict) -> bool:
    """Whether the hub can still use these tokens: the refresh works and userinfo answers."""
    refreshed = refresh(http, tokens["refresh_token"])
    userinfo = http.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert (userinfo.status_code == 200) == (refreshed.status_code == 200), (
        userinfo.status_code,
        refreshed.get_data(as_text=True),
    )
    if refreshed.status_code == 200:
        tokens.update(refreshed.get_json())  # the rotated refresh token, for the next look
        return True
    assert refreshed.get_json()["error"] == "invalid_grant"
    return False


def _logout(http, id_token: str):
    return http.get(
        "/oauth/logout",
        query_string={"id_token_hint": id_token, "post_logout_redirect_uri": HUB_REDIRECT},
    )


def _consultant_in_acme(partner_world, flow) -> dict:
    return tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)


def _switched_by_exchange(partner_world, flow) -> tuple[dict, dict]:
    """Tokens for Acme, then for Globex exchanged from Acme's access token."""
    acme = _consultant_in_acme(partner_world, flow)
    return acme, _switch(flow.http, acme["access_token"], partner_world["globex"].id)


def _switched_by_authorize(partner_world, flow) -> tuple[dict, dict]:
    """Tokens for Acme, then for Globex from ``/authorize?organization=`` in the same login."""
    acme = _consultant_in_acme(partner_world, flow)
    again = type(flow)(flow.http, nonce="switch-nonce")
    response = again.authorize(organization=partner_world["globex"].id)
    globex = again.exchange(query_of(response.headers["Location"])["code"]).get_json()
    return acme, globex


def test_logging_out_ends_the_partner_switched_to(app, partner_world, flow):
    acme, globex = _switched_by_exchange(partner_world, flow)
    assert _alive(flow.http, globex)
    assert _logout(flow.http, acme["id_token"]).status_code == 302
    assert not _alive(flow.http, globex)
    assert not _alive(flow.http, acme)


def test_a_reused_refresh_token_ends_every_switch_made_from_its_login(app, partner_world, flow):
    acme, globex = _switched_by_exchange(partner_world, flow)
    # A switch made from the switch, back to the first partner.
    back = _switch(flow.http, globex["access_token"], partner_world["acme"].id)
    stolen = acme["refresh_token"]
    assert refresh(flow.http, stolen).status_code == 200  # the hub rotates it
    replayed = refresh(flow.http, stolen)  # the thief's copy comes second
    assert replayed.get_json()["error"] == "invalid_grant"
    assert not _alive(flow.http, globex)
    assert not _alive(flow.http, back)


def test_revoking_a_refresh_token_ends_the_switches_made_from_it(app, partner_world, flow):
    acme, globex = _switched_by_exchange(partner_world, flow)
    response = flow.http.post(
        "/oauth/revoke", data={"token": acme["refresh_token"], "client_id": "partner-hub"}
    )
    assert response.status_code == 200
    assert not _alive(flow.http, globex)


def test_revoking_a_switch_leaves_the_family_it_came_from(app, partner_world, flow):
    acme, globex = _switched_by_exchange(partner_world, flow)
    flow.http.post(
        "/oauth/revoke", data={"token": globex["refresh_token"], "client_id": "partner-hub"}
    )
    assert not _alive(flow.http, globex)
    assert _alive(flow.http, acme)


def test_logging_out_ends_the_login_switched_away_from_by_authorize(app, partner_world, flow):
    acme, globex = _switched_by_authorize(partner_world, flow)
    # The hub logs out with the ID token of the partner it shows now.
    assert _logout(flow.http, globex["id_token"]).status_code == 302
    assert not _alive(flow.http, acme)
    assert not _alive(flow.http, globex)


def test_signing_out_without_a_hint_ends_the_login_s_tokens(app, partner_world, flow):
    acme, globex = _switched_by_exchange(partner_world, flow)
    _sign_out(flow.http, "/oauth/logout")
    assert not _alive(flow.http, acme)
    assert not _alive(flow.http, globex)


def test_signing_out_from_the_account_pages_ends_the_login_s_tokens(app, partner_world, flow):
    acme = _consultant_in_acme(partner_world, flow)
    _sign_out(flow.http)
    assert not _alive(flow.http, acme)


def _sign_in_again(flow, email: str) -> dict:
    """``prompt=login`` in the same browser: the password typed again, a new code."""
    again = type(flow)(flow.http, nonce=f"again-{email}")
    response = again.login(email, login_response=again.authorize(prompt="login"))
    while response.status_code == 302 and "code=" not in response.headers["Location"]:
        response = flow.http.get(response.headers["Location"])
    tokens = again.exchange(query_of(response.headers["Location"])["code"])
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    return tokens.get_json()


def _sign_out(http, path: str = "/logout"):
    """Confirm the sign-out page's CSRF-protected form."""
    page = http.get(path)
    assert http.post(path, data={"csrf_token": csrf_from(page.text)}).status_code == 200


def test_typing_the_password_again_keeps_one_login_to_sign_out_of(app, partner_world, flow):
    email = partner_world["owner"].email
    first = tokens_for(flow, email)
    second = _sign_in_again(flow, email)
    assert _alive(flow.http, first)
    _sign_out(flow.http)
    assert not _alive(flow.http, first)
    assert not _alive(flow.http, second)


def test_someone_else_signing_in_on_the_browser_ends_the_earlier_login(app, partner_world, flow):
    first = _consultant_in_acme(partner_world, flow)
    second = _sign_in_again(flow, partner_world["owner"].email)
    assert not _alive(flow.http, first)
    assert _alive(flow.http, second)


def _past_the_login_s_lifetime(app) -> None:
    too_old = utcnow() - timedelta(seconds=app.config["IDP_SESSION_MAX_AGE"] + 60)
    db.session.execute(db.update(LoginSession).values(created_at=too_old))
    db.session.commit()


@pytest.mark.parametrize("path", ["/logout", "/oauth/logout"])
def test_signing_out_after_the_login_s_lifetime_still_ends_its_tokens(
    app, partner_world, flow, path
):
    tokens = tokens_for(flow, partner_world["owner"].email)
    _past_the_login_s_lifetime(app)
    _sign_out(flow.http, path)
    assert not _alive(flow.http, tokens)


def test_a_hinted_logout_after_the_login_s_lifetime_ends_the_whole_login(app, partner_world, flow):
    acme, globex = _switched_by_authorize(partner_world, flow)
    _past_the_login_s_lifetime(app)
    assert _logout(flow.http, acme["id_token"]).status_code == 302
    assert not _alive(flow.http, acme)
    assert not _alive(flow.http, globex)  # the login's other family, not only the hinted one


def test_a_bare_id_token_hint_ends_its_family_not_the_whole_login(app, partner_world, flow):
    from tests.oauth.conftest import BrowserClient

    acme, globex = _switched_by_authorize(partner_world, flow)
    # From a browser without the login (anyone who got hold of an old ID token).
    assert _logout(BrowserClient(app), globex["id_token"]).status_code == 302
    assert not _alive(flow.http, globex)
    assert _alive(flow.http, acme)


def test_logging_out_in_one_browser_leaves_another_browser_s_login(app, partner_world, flow):
    from tests.oauth.conftest import BrowserClient

    laptop = _consultant_in_acme(partner_world, flow)
    phone_flow = type(flow)(BrowserClient(app), nonce="phone")
    phone = tokens_for(phone_flow, partner_world["consultant"].email, partner_world["acme"].id)
    assert _logout(flow.http, laptop["id_token"]).status_code == 302
    assert not _alive(flow.http, laptop)
    assert _alive(phone_flow.http, phone)


def test_an_ended_membership_leaves_the_partner_switched_to(app, partner_world, flow):
    from idp.orgs.models import Membership

    consultant = partner_world["consultant"]
    acme, globex = _switched_by_exchange(partner_world, flow)
    db.session.execute(
        db.delete(Membership).where(
            Membership.user_id == consultant.id,
            Membership.organization_id == partner_world["acme"].id,
        )
    )
    db.session.commit()
    assert not _alive(flow.http, acme)
    assert _alive(flow.http, globex)


def test_a_reuse_after_the_membership_ended_still_ends_the_switches(app, partner_world, flow):
    from idp.orgs.models import Membership

    acme, globex = _switched_by_exchange(partner_world, flow)
    stolen = acme["refresh_token"]
    assert _alive(flow.http, acme)  # rotated: the stolen copy is now a used token
    db.session.execute(
        db.delete(Membership).where(
            Membership.user_id == partner_world["consultant"].id,
            Membership.organization_id == partner_world["acme"].id,
        )
    )
    db.session.commit()
    assert not _alive(flow.http, acme)  # ended with the membership, the switch kept
    assert refresh(flow.http, stolen).get_json()["error"] == "invalid_grant"
    assert not _alive(flow.http, globex)


def test_a_reuse_ends_switches_below_a_switch_that_ended_on_its_own(app, partner_world, flow):
    from idp.orgs.models import Membership

    consultant = partner_world["consultant"]
    initech = make_org("partner", "Initech")
    db.session.add(Membership.create(consultant, initech, "member"))
    db.session.commit()
    acme, globex = _switched_by_exchange(partner_world, flow)
    third = _switch(flow.http, globex["access_token"], initech.id)
    stolen = acme["refresh_token"]
    assert _alive(flow.http, acme)  # rotated: the stolen copy is now a used token
    db.session.execute(
        db.delete(Membership).where(
            Membership.user_id == consultant.id,
            Membership.organization_id == partner_world["globex"].id,
        )
    )
    db.session.commit()
    assert not _alive(flow.http, globex)  # ended with its membership, the switch below kept
    assert _alive(flow.http, third)
    assert refresh(flow.http, stolen).get_json()["error"] == "invalid_grant"
    assert not _alive(flow.http, third)  # derived from the stolen grant, two switches down
    assert not _alive(flow.http, acme)


def test_a_code_for_an_organization_left_meanwhile_gets_no_tokens(app, partner_world, flow):
    from idp.orgs.models import Membership

    owner = partner_world["owner"]
    code = flow.code_for(owner.email)
    db.session.execute(
        db.delete(Membership).where(
            Membership.user_id == owner.id,
            Membership.organization_id == partner_world["acme"].id,
        )
    )
    db.session.commit()
    assert _refused(flow.exchange(code))
    assert _live_families() == 0


def test_a_code_issued_before_the_password_changed_gets_no_tokens(app, partner_world, flow):
    owner = partner_world["owner"]
    code = flow.code_for(owner.email)
    # What a password change, an email reassignment or "end all sessions" does.
    owner.security_stamp = new_security_stamp()
    revoke_user_tokens(owner.id, "password_changed")
    db.session.commit()
    response = flow.exchange(code)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_a_code_issued_after_the_password_changed_works(app, partner_world, flow):
    owner = partner_world["owner"]
    revoke_user_tokens(owner.id, "password_changed")
    db.session.commit()
    assert tokens_for(flow, owner.email)["access_token"]


def _pending_code(flow, nonce: str) -> tuple[object, str]:
    """A second code in the browser's current login, not exchanged yet (the hub is slow)."""
    pending = type(flow)(flow.http, nonce=nonce)
    response = pending.authorize()
    assert response.status_code == 302, response.get_data(as_text=True)
    return pending, query_of(response.headers["Location"])["code"]


def _live_families() -> int:
    return db.session.scalar(db.select(db.func.count()).where(TokenFamily.revoked_at.is_(None)))


def _end_every_session(user_id: str, reason: str = "password_changed") -> None:
    """What a password reset, support's "end sessions" or an email reassignment runs."""
    user = db.session.get(User, user_id)
    user.security_stamp = new_security_stamp()
    revoke_user_tokens(user_id, reason)
    db.session.commit()


def _sign_out_elsewhere(user_id: str, login_session_id: str) -> None:
    """What signing out of that login runs in another tab or instance (no hint)."""
    revoke_login_families(user_id, login_session_id, "logged_out")
    db.session.commit()


def _refused(response) -> bool:
    assert response.status_code == 400, response.get_data(as_text=True)
    return response.get_json()["error"] == "invalid_grant"


def test_a_code_of_a_login_that_logged_out_gets_no_tokens(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    pending, code = _pending_code(flow, "before-logout")
    assert _logout(flow.http, tokens["id_token"]).status_code == 302
    assert _refused(pending.exchange(code))
    assert db.session.scalar(db.select(db.func.count()).select_from(TokenFamily)) == 1


def test_a_code_of_a_login_someone_else_replaced_gets_no_tokens(app, partner_world, flow):
    code = flow.code_for(partner_world["consultant"].email, partner_world["acme"].id)
    _sign_in_again(flow, partner_world["owner"].email)
    assert _refused(flow.exchange(code))


def test_a_code_from_before_the_password_was_typed_again_works_and_ends_with_the_login(
    app, partner_world, flow
):
    email = partner_world["owner"].email
    code = flow.code_for(email)
    _sign_in_again(flow, email)
    earlier = flow.exchange(code)
    assert earlier.status_code == 200, earlier.get_data(as_text=True)
    _sign_out(flow.http)
    assert not _alive(flow.http, earlier.get_json())


def test_a_code_of_an_ended_login_stays_worthless_when_its_person_signs_in_again(
    app, partner_world, flow
):
    email = partner_world["owner"].email
    code = flow.code_for(email)
    again = type(flow)(flow.http, nonce="again")
    login_url = again.authorize(prompt="login").headers["Location"]
    page = flow.http.get(login_url)  # the login page, open in the browser
    # Support ends the login, while this code was being written (so it was not spent).
    end_logins(login_session_id=db.session.scalars(db.select(LoginSession.id)).one())
    db.session.commit()
    signed_in = flow.http.post(
        login_url, data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    assert _refused(flow.exchange(code))


def test_a_narrower_refresh_narrows_the_access_token_only(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    granted = tokens["scope"]
    narrow = refresh(flow.http, tokens["refresh_token"], scope="openid")
    assert narrow.status_code == 200
    assert narrow.get_json()["scope"] == "openid"
    # RFC 6749 section 6: the new refresh token has the scope of the one it replaces.
    full = refresh(flow.http, narrow.get_json()["refresh_token"])
    assert full.status_code == 200
    assert full.get_json()["scope"] == granted
    again = refresh(flow.http, full.get_json()["refresh_token"], scope="openid email")
    assert again.get_json()["scope"] == "openid email"


@pytest.mark.postgres
def test_a_logout_racing_a_switch_ends_the_switch_too(app, partner_world, flow, monkeypatch):
    consultant = partner_world["consultant"]
    acme = _consultant_in_acme(partner_world, flow)
    family = db.session.scalars(db.select(TokenFamily)).one()

    def log_out_elsewhere():
        revoke_family(db.session.get(TokenFamily, family.id), "logged_out")
        revoke_login_families(consultant.id, family.login_session_id, "logged_out")
        db.session.commit()

    # The logout lands after the switch checked its subject token, before it writes.
    competitor = Competitor(app, log_out_elsewhere)
    pause_before(monkeypatch, exchange, "open_family", competitor)
    response = flow.http.post(
        "/oauth/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "client_id": "partner-hub",
            "subject_token": acme["access_token"],
            "subject_token_type": ACCESS,
            "organization": partner_world["globex"].id,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    competitor.finish()
    assert not _alive(flow.http, response.get_json())
    assert not _alive(flow.http, acme)


@pytest.mark.postgres
def test_a_logout_racing_a_code_exchange_ends_the_family_it_opens(
    app, partner_world, flow, monkeypatch
):
    owner = partner_world["owner"]
    tokens_for(flow, owner.email)
    pending, code = _pending_code(flow, "racing-logout")
    login = db.session.scalars(
        db.select(LoginSession).where(LoginSession.user_id == owner.id)
    ).one()

    # The logout lands after the exchange claimed the code, before it writes the family.
    competitor = Competitor(app, lambda: _sign_out_elsewhere(owner.id, login.id))
    pause_before(monkeypatch, grants, "issue_tokens", competitor)
    response = pending.exchange(code)
    competitor.finish()
    # The logout waited for the exchange to commit, then found and ended its family.
    assert response.status_code == 200, response.get_data(as_text=True)
    assert not _alive(flow.http, response.get_json())
    assert _live_families() == 0


@pytest.mark.postgres
def test_a_code_issued_while_support_ends_the_sessions_gets_no_tokens(
    app, partner_world, flow, monkeypatch
):
    owner = partner_world["owner"]
    tokens_for(flow, owner.email)

    # The authorization request checked the browser's login; its code is written after.
    competitor = Competitor(app, lambda: _end_every_session(owner.id, "sessions_ended_by_support"))
    pause_before(monkeypatch, grants, "insert_code", competitor)
    pending, code = _pending_code(flow, "racing-end-sessions")
    competitor.finish()
    assert _refused(pending.exchange(code))
    assert _live_families() == 0


@pytest.mark.postgres
def test_two_logouts_of_one_login_at_once_both_finish(app, partner_world, flow, monkeypatch):
    owner = partner_world["owner"]
    tokens = tokens_for(flow, owner.email)
    family = db.session.scalars(db.select(TokenFamily)).one()

    competitor = Competitor(app, lambda: _sign_out_elsewhere(owner.id, family.login_session_id))
    pause_before(monkeypatch, logout, "sign_out", competitor)
    assert _logout(flow.http, tokens["id_token"]).status_code == 302
    competitor.finish()
    assert not _alive(flow.http, tokens)


@pytest.mark.postgres
def test_a_code_exchanged_while_its_person_signs_in_again_still_works(
    app, partner_world, flow, monkeypatch
):
    email = partner_world["owner"].email
    code = flow.code_for(email)

    def hub_exchanges_the_earlier_code():
        # In the competitor's own connection: it waits for the sign-in, which moved the code.
        hub = type(flow)(app.test_client())
        hub.verifier = flow.verifier
        return hub.exchange(code)

    competitor = Competitor(app, hub_exchanges_the_earlier_code)
    pause_before(monkeypatch, revocation, "end_logins", competitor)
    again = _sign_in_again(flow, email)
    earlier = competitor.finish()
    assert earlier.status_code == 200, earlier.get_data(as_text=True)
    _sign_out(flow.http)
    assert not _alive(flow.http, earlier.get_json())
    assert not _alive(flow.http, again)


@pytest.mark.postgres
def test_a_password_reset_while_its_person_signs_in_again_ends_both_logins(
    app, partner_world, flow, monkeypatch
):
    owner = partner_world["owner"]
    code = flow.code_for(owner.email)  # on its way to the hub

    # The reset lands while the new login has carried the earlier one's code over.
    competitor = Competitor(app, lambda: _end_every_session(owner.id))
    pause_before(monkeypatch, login_session, "end_logins", competitor)
    again = type(flow)(flow.http, nonce="again")
    signed_in = again.login(owner.email, login_response=again.authorize(prompt="login"))
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    competitor.finish()
    assert _refused(flow.exchange(code))
    after = type(flow)(flow.http, nonce="after-reset").authorize()
    assert "/login?" in after.headers["Location"]


@pytest.mark.postgres
def test_an_email_reassigned_while_a_code_is_exchanged_ends_its_family(
    app, partner_world, flow, monkeypatch
):
    from tests.factories import bearer_for, make_org, make_user

    support = make_org("support", "Support")
    agent = make_user("support", support, "agent")
    db.session.commit()
    owner = partner_world["owner"]
    tokens_for(flow, owner.email)
    pending, code = _pending_code(flow, "racing-reassignment")

    def support_reassigns_the_address():
        return app.test_client().post(
            f"/v1/support/accounts/{owner.id}/email",
            json={"email": "new.owner@example.com", "ticket": "SUP-7", "reason": "lost mailbox"},
            headers=bearer_for(agent, support),
        )

    # The reassignment lands after the exchange claimed the code, before it writes.
    competitor = Competitor(app, support_reassigns_the_address)
    pause_before(monkeypatch, grants, "issue_tokens", competitor)
    response = pending.exchange(code)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert competitor.finish().status_code == 200
    assert not _alive(flow.http, response.get_json())
    assert db.session.get(User, owner.id).email == "new.owner@example.com"


@pytest.mark.postgres
@pytest.mark.parametrize("ending", ["sign_out", "password_reset"])
def test_a_login_ending_while_a_switch_is_made_ends_the_switch_too(
    app, partner_world, flow, monkeypatch, ending
):
    consultant = partner_world["consultant"]
    acme = _consultant_in_acme(partner_world, flow)
    family = db.session.scalars(db.select(TokenFamily)).one()

    def end_the_login():
        if ending == "sign_out":
            _sign_out_elsewhere(consultant.id, family.login_session_id)
        else:
            _end_every_session(consultant.id)

    # It lands after the switch read the family it comes from, before it writes.
    competitor = Competitor(app, end_the_login)
    pause_before(monkeypatch, exchange, "open_family", competitor)
    globex = _switch(flow.http, acme["access_token"], partner_world["globex"].id)
    competitor.finish()
    assert not _alive(flow.http, globex)
    assert not _alive(flow.http, acme)
