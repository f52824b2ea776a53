"""OpenID Connect RP-Initiated Logout through the ``end_session_endpoint``."""

from __future__ import annotations

import re

import jwt
import pytest

from idp.extensions import db
from idp.oauth.models import TokenFamily
from tests.oauth.conftest import (
    HUB_REDIRECT,
    csrf_from,
    query_of,
    register_partner_hub,
    tokens_for,
)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_logout_with_an_id_token_hint_ends_the_session_and_its_tokens(
    app, partner_world, flow, alg
):
    register_partner_hub(alg)  # the hint is signed as the client registered
    tokens = tokens_for(flow, partner_world["owner"].email)
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == alg
    response = flow.http.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": HUB_REDIRECT,
            "state": "bye",
        },
    )
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["state"] == "bye"
    assert response.headers["Location"].startswith(HUB_REDIRECT)
    assert db.session.scalars(db.select(TokenFamily)).one().revoked_reason == "logged_out"
    # The browser session is gone: a new authorization asks for the password again.
    again = type(flow)(flow.http, nonce="after-logout").authorize()
    assert "/login?" in again.headers["Location"]


def test_an_unregistered_post_logout_redirect_is_refused(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = flow.http.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.example/",
        },
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_without_a_hint_the_user_confirms_with_a_csrf_protected_form(app, partner_world, flow):
    tokens_for(flow, partner_world["owner"].email)
    page = flow.http.get("/oauth/logout")
    assert page.status_code == 200
    assert "Sign out?" in page.text
    # A POST without the form's token is a request like any RP's: it asks too.
    without_csrf = flow.http.post("/oauth/logout")
    assert without_csrf.status_code == 200 and "Sign out?" in without_csrf.text
    forged = flow.http.post("/oauth/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    still = type(flow)(flow.http, nonce="still-signed-in").authorize()
    assert "code=" in still.headers["Location"]
    done = flow.http.post("/oauth/logout", data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 200
    assert "signed out" in done.text
    again = type(flow)(flow.http, nonce="after-logout").authorize()
    assert "/login?" in again.headers["Location"]


def test_a_forged_hint_is_refused(app, hub_clients, flow):
    response = flow.http.get("/oauth/logout", query_string={"id_token_hint": "a.b.c"})
    assert response.status_code == 400


@pytest.mark.parametrize(("before", "after"), [("ES256", "RS256"), ("RS256", "ES256")])
def test_an_id_token_issued_before_its_client_changed_algorithm_still_signs_out(
    app, partner_world, flow, before, after
):
    """The hub switched its ID tokens' algorithm: its signed-in people can still sign out."""
    register_partner_hub(before)
    tokens = tokens_for(flow, partner_world["owner"].email)
    register_partner_hub(after)
    response = flow.http.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": HUB_REDIRECT,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(HUB_REDIRECT)
    assert db.session.scalars(db.select(TokenFamily)).one().revoked_reason == "logged_out"
    again = type(flow)(flow.http, nonce="after-switch").authorize()
    assert "/login?" in again.headers["Location"]


def test_an_access_token_is_not_an_id_token_hint(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = flow.http.get(
        "/oauth/logout", query_string={"id_token_hint": tokens["access_token"]}
    )
    assert response.status_code == 400
    assert db.session.scalars(db.select(TokenFamily)).one().revoked_at is None
    # Still signed in: a new authorization goes straight back with a code.
    again = type(flow)(flow.http, nonce="still-in").authorize()
    assert "code=" in again.headers["Location"]


def test_a_post_logout_redirect_with_non_ascii_characters_is_refused(app, hub_clients, flow):
    response = flow.http.get(
        "/oauth/logout",
        query_string={"client_id": "partner-hub", "post_logout_redirect_uri": HUB_REDIRECT + "ä"},
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def _session_cookie(http) -> str:
    return http.get_cookie("idp_session").value


def test_a_session_cookie_copied_before_logout_is_dead_after_it(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    copied = _session_cookie(flow.http)
    response = flow.http.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": HUB_REDIRECT,
        },
    )
    assert response.status_code == 302
    # Someone who copied the cookie (shared computer, stolen file) replays it.
    flow.http.client.set_cookie("idp_session", copied)
    again = type(flow)(flow.http, nonce="replayed-cookie").authorize()
    assert "/login?" in again.headers["Location"]


@pytest.mark.parametrize("path", ["/logout", "/oauth/logout"])
def test_signing_out_is_in_the_audit_log(app, partner_world, flow, path):
    from idp.audit.models import AuditEvent

    owner = partner_world["owner"]
    tokens_for(flow, owner.email)
    page = flow.http.get(path)
    assert flow.http.post(path, data={"csrf_token": csrf_from(page.text)}).status_code == 200
    db.session.expire_all()
    (event,) = db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "login.signed_out")
    ).all()
    assert (event.actor_id, event.target_id) == (owner.id, owner.id)
    assert event.after["token_families_revoked"] == 1


def test_a_refused_sign_out_is_not_on_record(app, partner_world, flow):
    from idp.audit.models import AuditEvent

    tokens_for(flow, partner_world["owner"].email)
    assert flow.http.post("/logout").status_code == 400  # no CSRF token
    assert not db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "login.signed_out")
    ).all()


def test_an_rp_may_post_its_logout_request(app, partner_world, flow):
    """RP-Initiated Logout 1.0 section 2: the OP supports GET and POST alike."""
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = flow.http.post(
        "/oauth/logout",
        data={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": HUB_REDIRECT,
            "state": "bye",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(HUB_REDIRECT)
    assert query_of(response.headers["Location"])["state"] == "bye"
    assert db.session.scalars(db.select(TokenFamily)).one().revoked_reason == "logged_out"


def test_a_posted_request_without_a_hint_is_confirmed_by_the_person(app, partner_world, flow):
    tokens_for(flow, partner_world["owner"].email)
    asked = flow.http.post(
        "/oauth/logout", data={"post_logout_redirect_uri": HUB_REDIRECT, "client_id": "partner-hub"}
    )
    assert asked.status_code == 200 and "Sign out?" in asked.text
    assert db.session.scalars(db.select(TokenFamily)).one().revoked_at is None
    done = flow.http.post(
        "/oauth/logout",
        data={
            "csrf_token": csrf_from(asked.text),
            "post_logout_redirect_uri": HUB_REDIRECT,
            "client_id": "partner-hub",
        },
    )
    assert done.status_code == 302 and done.headers["Location"].startswith(HUB_REDIRECT)


def _sign_in_links(html: str) -> list[str]:
    """The links of a page that lead to a login page."""
    return [href for href in re.findall(r'href="([^"]+)"', html) if href.startswith("/login")]


@pytest.mark.parametrize(
    ("named", "links"),
    [
        ({"client_id": "partner-hub"}, ["/login?hub=partner"]),
        ({"client_id": "client-hub"}, ["/login?hub=client"]),
        ({}, ["/login?hub=partner", "/login?hub=client"]),
    ],
)
def test_the_signed_out_page_leads_back_to_a_hub_login(app, partner_world, flow, named, links):
    """Without a post-logout redirect the person still has a way on, whoever they were."""
    email = partner_world["owner"].email
    tokens_for(flow, email)
    asked = flow.http.get("/oauth/logout", query_string=named)
    done = flow.http.post("/oauth/logout", data={"csrf_token": csrf_from(asked.text), **named})
    assert done.status_code == 200 and "You are signed out." in done.text
    assert _sign_in_links(done.text) == links
    assert email not in done.text


def test_the_signed_out_page_of_a_hint_without_redirect_leads_to_its_hub(app, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    done = flow.http.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert done.status_code == 200 and "You are signed out." in done.text
    assert _sign_in_links(done.text) == ["/login?hub=partner"]
