"""What ends with a login: its partner switches, its other codes' tokens, and what a reuse taints.

A partner switch (token exchange) opens a family of its own. It must end
with the family it was exchanged from (a logout, a revocation, a reused
refresh token), or a stolen 15-minute access token could be exchanged for a
refresh token that outlives all of them.
"""

from __future__ import annotations

from idp.accounts.models import new_security_stamp
from idp.extensions import db
from idp.oauth.models import TOKEN_EXCHANGE
from idp.oauth.revocation import revoke_user_tokens
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


def test_logging_out_ends_the_partner_switched_to(app, partner_world, flow):
    acme = _consultant_in_acme(partner_world, flow)
    globex = _switch(flow.http, acme["access_token"], partner_world["globex"].id)
    assert _alive(flow.http, globex)
    assert _logout(flow.http, acme["id_token"]).status_code == 302
    assert not _alive(flow.http, globex)
    assert not _alive(flow.http, acme)


def test_a_reused_refresh_token_ends_every_switch_made_from_its_login(app, partner_world, flow):
    acme = _consultant_in_acme(partner_world, flow)
    globex = _switch(flow.http, acme["access_token"], partner_world["globex"].id)
    # A switch made from the switch, back to the first partner.
    back = _switch(flow.http, globex["access_token"], partner_world["acme"].id)
    stolen = acme["refresh_token"]
    assert refresh(flow.http, stolen).status_code == 200  # the hub rotates it
    replayed = refresh(flow.http, stolen)  # the thief's copy comes second
    assert replayed.get_json()["error"] == "invalid_grant"
    assert not _alive(flow.http, globex)
    assert not _alive(flow.http, back)


def test_revoking_a_refresh_token_ends_the_switches_made_from_it(app, partner_world, flow):
    acme = _consultant_in_acme(partner_world, flow)
    globex = _switch(flow.http, acme["access_token"], partner_world["globex"].id)
    response = flow.http.post(
        "/oauth/revoke", data={"token": acme["refresh_token"], "client_id": "partner-hub"}
    )
    assert response.status_code == 200
    assert not _alive(flow.http, globex)


def test_revoking_a_switch_leaves_the_family_it_came_from(app, partner_world, flow):
    acme = _consultant_in_acme(partner_world, flow)
    globex = _switch(flow.http, acme["access_token"], partner_world["globex"].id)
    flow.http.post(
        "/oauth/revoke", data={"token": globex["refresh_token"], "client_id": "partner-hub"}
    )
    assert not _alive(flow.http, globex)
    assert _alive(flow.http, acme)


def test_logging_out_ends_the_login_switched_away_from_by_authorize(app, partner_world, flow):
    consultant, acme_org, globex_org = (partner_world[k] for k in ("consultant", "acme", "globex"))
    acme = tokens_for(flow, consultant.email, acme_org.id)
    again = type(flow)(flow.http, nonce="switch-nonce")
    code = query_of(again.authorize(organization=globex_org.id).headers["Location"])["code"]
    globex = again.exchange(code).get_json()
    # The hub logs out with the ID token of the partner it shows now.
    assert _logout(flow.http, globex["id_token"]).status_code == 302
    assert not _alive(flow.http, acme)
    assert not _alive(flow.http, globex)


def test_signing_out_without_a_hint_ends_the_login_s_tokens(app, partner_world, flow):
    acme = _consultant_in_acme(partner_world, flow)
    globex = _switch(flow.http, acme["access_token"], partner_world["globex"].id)
    page = flow.http.get("/oauth/logout")
    assert flow.http.post("/oauth/logout", data={"csrf_token": csrf_from(page.text)}).status_code
    assert not _alive(flow.http, acme)
    assert not _alive(flow.http, globex)


def test_signing_out_from_the_account_pages_ends_the_login_s_tokens(app, partner_world, flow):
    acme = _consultant_in_acme(partner_world, flow)
    page = flow.http.get("/logout")
    response = flow.http.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 200
    assert not _alive(flow.http, acme)


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
    acme = _consultant_in_acme(partner_world, flow)
    globex = _switch(flow.http, acme["access_token"], partner_world["globex"].id)
    db.session.execute(
        db.delete(Membership).where(
            Membership.user_id == consultant.id,
            Membership.organization_id == partner_world["acme"].id,
        )
    )
    db.session.commit()
    assert not _alive(flow.http, acme)
    assert _alive(flow.http, globex)


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
