"""A signed-in person sees their open logins and, with the password, signs other browsers out."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.login.models import LoginSession
from tests.accounts.test_password_change import _browser_sign_in, signed_in_elsewhere
from tests.factories import PASSWORD
from tests.oauth.conftest import BrowserClient, Flow, csrf_from, refresh, tokens_for
from tests.test_hostile_forms import login

PAGE = "/account/sessions"
ROW = re.compile(r'<li class="login">(.*?)</li>', re.S)
END_ONE = re.compile(r'<button type="submit" name="login" value="([^"]+)"[^>]*>Sign out</button>')


def _end(browser, login: str, password: str = PASSWORD):
    """Press a button of the page ("others", or a login's own) with ``password`` typed."""
    page = browser.get(PAGE)
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_from(page.text), "current_password": password, "login": login}
    return browser.post(PAGE, data=data)


def _signed_in_still(browser) -> bool:
    return browser.get("/login/done").status_code == 200


def _open_logins() -> int:
    query = sa.select(sa.func.count()).where(LoginSession.ended_at.is_(None))
    return db.session.scalar(query)


def test_the_page_lists_each_open_login_and_names_this_browser(app, partner_world):
    email = partner_world["owner"].email
    here, _elsewhere = login(app, email), login(app, email)
    login(app, partner_world["consultant"].email)  # someone else's: not listed

    page = here.get(PAGE)

    assert page.status_code == 200
    rows = ROW.findall(page.text)
    assert len(rows) == 2
    assert ["This browser" in row for row in rows].count(True) == 1
    assert all(re.search(r"Signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC", row) for row in rows)
    # The other login has its own button; the page never shows a login's session id.
    assert len(END_ONE.findall(page.text)) == 1
    for login_id in db.session.scalars(sa.select(LoginSession.id)):
        assert login_id not in page.text


def test_signing_out_every_other_browser_ends_them_and_their_apps(app, partner_world):
    owner = partner_world["owner"]
    elsewhere = Flow(BrowserClient(app))  # another browser, with a hub's refresh token
    tokens = tokens_for(elsewhere, owner.email, partner_world["acme"].id)
    third = login(app, owner.email)
    here = login(app, owner.email)

    resp = _end(here, "others")

    assert resp.status_code == 200, resp.text
    assert "Every other browser is signed out" in resp.text
    assert _signed_in_still(here)
    assert not _signed_in_still(elsewhere.http) and not _signed_in_still(third)
    assert refresh(elsewhere.http, tokens["refresh_token"]).status_code == 400
    assert _open_logins() == 1
    assert len(ROW.findall(here.get(PAGE).text)) == 1
    event = db.session.scalar(sa.select(AuditEvent).filter_by(action="account.sessions_ended"))
    assert (event.actor_type, event.actor_id, event.target_id) == ("user", owner.id, owner.id)
    assert event.after == {"via": "current_password", "logins_ended": 2}


def test_signing_out_one_browser_leaves_the_others(app, partner_world):
    email = partner_world["owner"].email
    other, here = login(app, email), login(app, email)
    (others_button,) = END_ONE.findall(here.get(PAGE).text)
    third = login(app, email)
    assert len(END_ONE.findall(here.get(PAGE).text)) == 2

    resp = _end(here, others_button)

    assert resp.status_code == 200, resp.text
    assert "That browser is signed out" in resp.text
    assert not _signed_in_still(other)
    assert _signed_in_still(third) and _signed_in_still(here)


def test_a_wrong_password_ends_nothing_and_is_a_failed_login(app, partner_world):
    email = partner_world["owner"].email
    other, here = login(app, email), login(app, email)

    resp = _end(here, "others", password="not the password")

    assert resp.status_code == 401
    assert "The current password is wrong." in resp.text
    assert _signed_in_still(other) and _signed_in_still(here)
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert "login.failed" in actions and "account.sessions_ended" not in actions


def test_a_login_already_ended_is_named_and_nothing_is_checked(app, partner_world):
    email = partner_world["owner"].email
    other, here = login(app, email), login(app, email)
    (button,) = END_ONE.findall(here.get(PAGE).text)
    other.post("/logout", data={"csrf_token": csrf_from(other.get("/logout").text)})
    failures_before = db.session.scalar(
        sa.select(sa.func.count()).where(AuditEvent.action == "login.failed")
    )

    resp = _end(here, button, password="not the password")

    assert resp.status_code == 422
    assert "That browser is signed out already." in resp.text
    assert _signed_in_still(here)
    failures = sa.select(sa.func.count()).where(AuditEvent.action == "login.failed")
    assert db.session.scalar(failures) == failures_before  # no guess was counted


def test_a_visitor_not_signed_in_is_sent_to_the_login_page(app, partner_world):
    resp = BrowserClient(app).get(PAGE)
    assert resp.status_code == 302
    assert "/login?next=/account/sessions" in resp.headers["Location"]


def test_the_signed_in_page_links_to_it(app, partner_world):
    here = login(app, partner_world["owner"].email)
    assert f'href="{PAGE}"' in here.get("/login/done").text


@pytest.mark.browser
def test_sign_every_other_browser_out_in_a_browser(app, live_server, page, _browser):
    other = signed_in_elsewhere(app, live_server, _browser)
    _browser_sign_in(page, live_server.url, "cleo@bakery.example", PASSWORD)
    page.click("text=Your signed-in browsers")
    assert page.locator("h1").inner_text() == "Your signed-in browsers"
    assert page.locator("li.login").count() == 2

    # Enter in the password field presses "Sign out every other browser".
    page.fill("#current_password", "not my password")
    page.press("#current_password", "Enter")
    assert page.locator("#current_password-error").inner_text() == "The current password is wrong."
    page.fill("#current_password", PASSWORD)
    page.press("#current_password", "Enter")
    assert page.locator("h1").inner_text() == "Signed out elsewhere"
    page.click("text=Your signed-in browsers")
    assert page.locator("li.login").count() == 1  # this browser stays signed in

    other.goto(f"{live_server.url}/login/done")
    assert other.locator("h1").inner_text().startswith("Sign in")
    other.context.close()
